package events

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldtrack/fieldtrack/internal/telemetry"
)

const tracerName = "github.com/fieldtrack/fieldtrack/internal/events"

// WithTracerProvider makes the listener's hand-off spans with tp instead of the global provider (tests).
// It returns l.
func (l *Listener) WithTracerProvider(tp trace.TracerProvider) *Listener {
	l.tracer = tp.Tracer(tracerName)
	return l
}

// maxHandOffSpans caps the spans one hand-off starts: a batch of up to handOffMaxEvents events from as
// many traced requests would otherwise cost a span each.
const maxHandOffSpans = 64

// handOffSpans starts the hand-off's spans: one per distinct trace among the batch's events (up to
// maxHandOffSpans), each a child of the request span that committed its events (the outbox rows' trace
// context), so each traced request's trace shows the hand-off of its events. The hand-off's statements
// trace under the first. A batch without traced events (every batch when tracing is off) starts nothing
// and allocates nothing. Events handed off by the start-up sweep (EventDispatchUnstamped) get no span.
func (l *Listener) handOffSpans(ctx context.Context, traces []string) (context.Context, []trace.Span) {
	var spans []trace.Span
	var counts map[string]int
	for _, tp := range traces {
		if tp == "" {
			continue
		}
		if counts == nil {
			counts = map[string]int{}
		}
		counts[tp]++
	}
	first := ctx
	for _, tp := range traces {
		n, ok := counts[tp]
		if !ok || len(spans) == maxHandOffSpans {
			continue
		}
		delete(counts, tp) // one span per trace, in the order the events came
		parent := telemetry.UnderTraceparent(ctx, tp)
		if !trace.SpanContextFromContext(parent).IsValid() {
			continue
		}
		sctx, span := l.tracer.Start(parent, "outbox hand-off", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("messaging.system", "postgresql"),
				attribute.String("messaging.destination.name", Publication),
				attribute.Int("messaging.batch.message_count", n), // this trace's events in the batch
				attribute.Int("fieldtrack.handoff.events", len(traces))))
		if len(spans) == 0 {
			first = sctx
		}
		spans = append(spans, span)
	}
	return first, spans
}

// endSpans ends the hand-off's spans with its outcome: the last stream position assigned, or the error.
func endSpans(spans []trace.Span, lastStreamID int64, err error) {
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		} else {
			span.SetAttributes(attribute.Int64("fieldtrack.stream_id.last", lastStreamID))
		}
		span.End()
	}
}
