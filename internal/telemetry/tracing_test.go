package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestTracing_ConfiguredOnlyByAnEndpointAndNotDisabled(t *testing.T) {
	for env, want := range map[string]bool{
		"": false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318":                           true,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://c:4318/v1/traces":          true,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318 OTEL_TRACES_EXPORTER=none": false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318 OTEL_SDK_DISABLED=true":    false,
		"OTEL_SERVICE_NAME=fieldtrack":                                        false,
	} {
		if got := TracingConfigured(envOf(env)); got != want {
			t.Errorf("%q: configured %v, want %v", env, got, want)
		}
	}
	if _, err := SetupTracing(context.Background(), envOf("OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/json")); err == nil ||
		!strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Fatalf("an unsupported protocol: %v", err)
	}
	stop, err := SetupTracing(context.Background(), envOf(""))
	if err != nil || stop(context.Background()) != nil {
		t.Fatalf("no configuration: %v", err)
	}
}

func envOf(s string) func(string) string {
	m := map[string]string{}
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func TestTraceLogHandler_NamesTheSpanOfTheContextOnce(t *testing.T) {
	var buf strings.Builder
	log := slog.New(TraceLogHandler(TraceLogHandler(slog.NewJSONHandler(&buf, nil)))).With("component", "x")
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	remote := UnderTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx, span := tp.Tracer("t").Start(remote, "local")
	defer span.End()
	log.InfoContext(ctx, "traced")
	log.InfoContext(context.Background(), "untraced")
	log.InfoContext(UnderTraceparent(context.Background(), "00-not-a-trace-01"), "malformed")
	log.InfoContext(remote, "a caller's context only")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || strings.Count(lines[0], `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`) != 1 ||
		!strings.Contains(lines[0], `"span_id":"`+span.SpanContext().SpanID().String()+`"`) ||
		!strings.Contains(lines[0], `"component":"x"`) ||
		strings.Contains(lines[1], "trace_id") || strings.Contains(lines[2], "trace_id") || strings.Contains(lines[3], "trace_id") {
		t.Fatalf("log lines:\n%s", buf.String())
	}
}
