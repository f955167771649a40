package events

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A hand-off starts one span per distinct traced request among its events, each under that request's
// span, with that trace's count of events; untraced and malformed contexts start nothing, and a batch of
// many traces starts at most maxHandOffSpans.
func TestHandOffSpans_OnePerTraceUnderItsRequest(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	l := NewListener("", nil, slog.New(slog.NewTextHandler(io.Discard, nil))).WithTracerProvider(tp)

	const a = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const b = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx, spans := l.handOffSpans(context.Background(), []string{a, "", b, a, "00-not-a-trace-01", ""})
	if len(spans) != 2 || trace.SpanFromContext(ctx) != spans[0] {
		t.Fatalf("%d spans, ctx under the first: %v", len(spans), trace.SpanFromContext(ctx) == spans[0])
	}
	endSpans(spans, 42, nil)
	got := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		got[s.Parent.TraceID().String()+"-"+s.Parent.SpanID().String()] = s
	}
	for parent, events := range map[string]int64{
		"4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7": 2, "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331": 1,
	} {
		s, ok := got[parent]
		if !ok || s.Name != "outbox hand-off" || s.SpanKind != trace.SpanKindConsumer {
			t.Fatalf("no hand-off span under %s: %v", parent, got)
		}
		attrs := map[string]int64{}
		for _, kv := range s.Attributes {
			attrs[string(kv.Key)] = kv.Value.AsInt64()
		}
		if attrs["messaging.batch.message_count"] != events || attrs["fieldtrack.handoff.events"] != 6 ||
			attrs["fieldtrack.stream_id.last"] != 42 {
			t.Errorf("span under %s: attributes %v", parent, attrs)
		}
	}

	if ctx, spans := l.handOffSpans(context.Background(), []string{"", ""}); spans != nil || ctx != context.Background() {
		t.Fatal("an untraced batch started spans")
	}
	many := make([]string, 0, 2*maxHandOffSpans)
	for i := range 2 * maxHandOffSpans {
		many = append(many, fmt.Sprintf("00-%032x-%016x-01", i+1, i+1))
	}
	_, spans = l.handOffSpans(context.Background(), many)
	if len(spans) != maxHandOffSpans {
		t.Fatalf("%d spans for %d traces, want the cap %d", len(spans), len(many), maxHandOffSpans)
	}
	endSpans(spans, 1, nil)
}
