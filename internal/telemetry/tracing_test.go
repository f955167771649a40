package telemetry

import (
	"context"
	"strings"
	"testing"
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
