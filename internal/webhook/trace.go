package webhook

import (
	"context"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldtrack/fieldtrack/internal/telemetry"
)

const tracerName = "github.com/fieldtrack/fieldtrack/internal/webhook"

// WithTracerProvider makes the worker's attempt spans with tp instead of the global provider (tests). It
// returns w.
func (w *Worker) WithTracerProvider(tp trace.TracerProvider) *Worker {
	w.tracer = tp.Tracer(tracerName)
	return w
}

// startAttempt starts the span of one attempt: a child of the request that emitted the event when that
// request was traced (the outbox row's trace context), so the request's trace shows every attempt its
// event caused; a trace of its own otherwise. The span is the receiver's parent through traceparent.
func (w *Worker) startAttempt(ctx context.Context, c claim) (context.Context, trace.Span) {
	if c.TraceContext != nil {
		ctx = telemetry.UnderTraceparent(ctx, *c.TraceContext)
	}
	ctx, span := w.tracer.Start(ctx, "webhook attempt", trace.WithSpanKind(trace.SpanKindClient))
	if !span.IsRecording() {
		return ctx, span // tracing is off: no attributes to build
	}
	span.SetAttributes(
		attribute.String("http.request.method", "POST"),
		attribute.String("fieldtrack.webhook.id", c.WebhookID.String()),
		attribute.String("fieldtrack.delivery.id", c.ID.String()),
		attribute.String("fieldtrack.event.id", c.EventID.String()),
		attribute.String("fieldtrack.event.type", c.EventType),
		attribute.Int("fieldtrack.delivery.attempt", int(c.AttemptCount)),
	)
	if u, err := url.Parse(c.Url); err == nil {
		// Scheme and host only: the path or the query may carry the receiver's secret.
		span.SetAttributes(attribute.String("server.address", u.Hostname()), attribute.String("url.scheme", u.Scheme))
	}
	return ctx, span
}

// endAttempt ends an attempt's span with its outcome: the answer's status, the delivery's new status
// (success, pending, failed or aborted), and the error, if any, of the attempt or of recording it.
func endAttempt(span trace.Span, o outcome, status string, recordErr error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if o.status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", o.status))
	}
	span.SetAttributes(attribute.String("fieldtrack.delivery.status", status))
	switch {
	case recordErr != nil:
		span.RecordError(recordErr)
		span.SetStatus(codes.Error, "recording the attempt: "+recordErr.Error())
	case o.verdict != delivered && o.err != "":
		span.SetStatus(codes.Error, o.logged())
	}
	span.End()
}
