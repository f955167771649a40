package db

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracer makes a span of every statement and batch a traced request sends: only under a parent span
// (background work and untraced requests cost a context lookup), and with the parent's tracer provider,
// so no global state decides where the spans go. A request's first statement shows as the batch it is:
// BEGIN, the settings, the caller check and the statement (and COMMIT), one round trip, its statements
// listed as the span's attributes (the preamble by name). Statements carry their SQL text, never their
// arguments.
type tracer struct{}

type spanKey struct{}

const tracerName = "github.com/fieldtrack/fieldtrack/internal/db"

func startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) context.Context {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return ctx
	}
	ctx, span := parent.TracerProvider().Tracer(tracerName).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(attrs, attribute.String("db.system", "postgresql"))...))
	return context.WithValue(ctx, spanKey{}, span)
}

func endSpan(ctx context.Context, err error) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// operation is a statement's first word, the span's name (SELECT, INSERT, BEGIN, ...).
func operation(sql string) string {
	sql = strings.TrimSpace(sql)
	for strings.HasPrefix(sql, "--") { // a leading comment line
		_, sql, _ = strings.Cut(sql, "\n")
		sql = strings.TrimSpace(sql)
	}
	word, _, _ := strings.Cut(sql, " ")
	return strings.ToUpper(strings.TrimSpace(word))
}

func (tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return startSpan(ctx, operation(d.SQL), attribute.String("db.query.text", d.SQL))
}

func (tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	endSpan(ctx, d.Err)
}

// preamble names the statements every transaction opens with: a batch span lists them by name, without
// their (long, never-changing) SQL text, which would only weigh on every exported span.
var preamble = map[string]string{
	"BEGIN": "BEGIN", "BEGIN READ ONLY": "BEGIN READ ONLY", "COMMIT": "COMMIT",
	settingsSQL: "settings", settingsTracedSQL: "settings", checkCallerSQL: "caller check",
	shareClaimsSQL: "claims shared", // on Citus
}

// TraceBatchStart starts a batch's span with what it sends as attributes: its statements in order, by
// name (db.operation.batch.statements: BEGIN, settings, caller check, INSERT, COMMIT), and the SQL text of
// those that are not the preamble. Attributes rather than an event a statement: one span to build and
// export, whatever the batch's length.
func (tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return ctx
	}
	names := make([]string, 0, d.Batch.Len())
	var texts []string
	for _, q := range d.Batch.QueuedQueries {
		name, known := preamble[q.SQL]
		if !known {
			name = operation(q.SQL)
			texts = append(texts, q.SQL)
		}
		names = append(names, name)
	}
	attrs := []attribute.KeyValue{attribute.Int("db.operation.batch.size", d.Batch.Len()),
		attribute.StringSlice("db.operation.batch.statements", names)}
	if len(texts) > 0 {
		attrs = append(attrs, attribute.String("db.query.text", strings.Join(texts, ";\n")))
	}
	return startSpan(ctx, "batch", attrs...)
}

// TraceBatchQuery records a failed statement of the batch as an event; the others are the span's
// attributes already.
func (tracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok || d.Err == nil {
		return
	}
	name, known := preamble[d.SQL]
	if !known {
		name = operation(d.SQL)
	}
	span.AddEvent(name, trace.WithAttributes(attribute.String("error", d.Err.Error())))
}

func (tracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	endSpan(ctx, d.Err)
}
