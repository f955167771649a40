package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func TestMetrics_LabelByRoutePatternAndRequireTheScrapeToken(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MetricsScrapeToken = "scrape-token-for-tests"
	h := setupWith(t, cfg, testfactory.Pool(t))
	id := uuid.NewString()
	h.call("GET", "/admin/employees/"+id, testfactory.AdminToken(t, testfactory.NewOrg(t)), nil)

	if r := h.call("GET", "/metrics", "", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("metrics without token: %d", r.Status)
	}
	for name, authz := range map[string]string{
		"a wrong token":            "Bearer wrong",
		"a prefix of the token":    "Bearer scrape-token",
		"the token and more":       "Bearer scrape-token-for-tests2",
		"the token without Bearer": "scrape-token-for-tests",
		"another scheme":           "Basic scrape-token-for-tests",
	} {
		if r := h.call("GET", "/metrics", "", nil, "Authorization", authz); r.Status != http.StatusUnauthorized ||
			r.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("metrics with %s: %d %q", name, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}
	r := h.call("GET", "/metrics", "scrape-token-for-tests", nil)
	expect(t, r, http.StatusOK)
	body := string(r.Raw)
	if !strings.Contains(body, `http_requests_total{method="GET",route="/admin/employees/{id}",status_code="404"} 1`) {
		t.Fatalf("no request counter by route pattern in:\n%s", body)
	}
	if strings.Contains(body, id) {
		t.Fatal("a raw path reached the metric labels")
	}
}

// gps_locations_inserted_total counts the fixes stored, single or batched, and not the duplicates.
func TestMetrics_CountStoredFixesNotDuplicates(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond)
	tr := newTracked(t, testfactory.NewOrg(t), "Counted", now.Add(-time.Hour))
	g := newTrack(9, 48.1, 11.5, now.Add(-30*time.Minute)).drive(4, 5*time.Second, 10, 0, gaussian(3), 5)
	expect(t, h.call("POST", "/locations", tr.tok, singleBody(tr.session, g.fixes[0])), http.StatusCreated)
	expect(t, h.call("POST", "/locations", tr.tok, singleBody(tr.session, g.fixes[0])), http.StatusOK)
	if n := sendBatch(t, h, tr, g.fixes); n != len(g.fixes)-1 {
		t.Fatalf("batch stored %d new fixes, want %d", n, len(g.fixes)-1)
	}
	r := h.call("GET", "/metrics", "", nil)
	expect(t, r, http.StatusOK)
	want := fmt.Sprintf("gps_locations_inserted_total %d\n", len(g.fixes))
	if !strings.Contains(string(r.Raw), want) {
		t.Fatalf("want %q in the metrics", want)
	}
}

// A request that fails on a Postgres error counts under its SQLSTATE class: a second check-in breaks the
// one-open-session rule (23, integrity).
func TestMetrics_CountDatabaseErrorsByClass(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, testfactory.NewOrg(t), "Twice"))
	expect(t, h.call("POST", "/attendance/check-in", tok, nil), http.StatusCreated)
	if r := h.call("POST", "/attendance/check-in", tok, nil); r.Status < 400 || r.Status >= 500 {
		t.Fatalf("second check-in: %d %s", r.Status, r.Raw)
	}
	if body := string(h.call("GET", "/metrics", "", nil).Raw); !strings.Contains(body, `fieldtrack_db_errors_total{class="23"} 1`) {
		t.Fatalf("no database error of class 23 in:\n%s", body)
	}
}

// GET /docs is Swagger UI from the binary, on this server's own document, under the server's CSP.
func TestDocs_TheBrowsableDocumentFromTheBinary(t *testing.T) {
	t.Parallel()
	h := setup(t)
	page := h.call("GET", "/docs", "", nil)
	expect(t, page, http.StatusOK)
	if !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page.Raw), `src="/docs/swagger-ui-bundle.js"`) ||
		!strings.Contains(page.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("docs page %v %s", page.Header, page.Raw)
	}
	for asset, kind := range map[string]string{"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
		"init.js": "text/javascript", "favicon-32x32.png": "image/png"} {
		r := h.call("GET", "/docs/"+asset, "", nil)
		if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), kind) || len(r.Raw) == 0 {
			t.Fatalf("%s: %d %q (%d bytes)", asset, r.Status, r.Header.Get("Content-Type"), len(r.Raw))
		}
	}
	if init := string(h.call("GET", "/docs/init.js", "", nil).Raw); !strings.Contains(init, `url: "/openapi.json"`) {
		t.Fatalf("init.js does not load this server's document: %s", init)
	}
	expect(t, h.call("GET", "/docs/LICENSE", "", nil), http.StatusBadRequest)
	if root := h.call("GET", "/", "", nil); root.Body["docs"] != "/docs" {
		t.Fatalf("GET / names docs %v", root.Body["docs"])
	}
}

// Each request is a server span named by its route pattern, a child of the caller's traceparent, and its
// access log line carries the trace and span ids.
func TestTracing_ARequestSpanByRouteUnderTheCallersTrace(t *testing.T) {
	t.Parallel()
	var sink syncBuffer
	cfg := testConfig()
	cfg.MetricsScrapeToken = "scrape-token-for-tests"
	h := setupWithLog(t, cfg, testfactory.Pool(t), slog.New(slog.NewJSONHandler(&sink, nil)))
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h.server.WithTracerProvider(tp)

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	id := uuid.NewString()
	expect(t, h.call("GET", "/admin/employees/"+id, testfactory.AdminToken(t, testfactory.NewOrg(t)), nil,
		"traceparent", parent), http.StatusNotFound)
	spans := exp.GetSpans()
	var sp, batch tracetest.SpanStub
	for _, s := range spans {
		switch s.SpanKind {
		case trace.SpanKindServer:
			sp = s
		case trace.SpanKindClient:
			batch = s
		}
	}
	if len(spans) != 2 {
		t.Fatalf("%d spans, want the request's and its database batch", len(spans))
	}
	// The transaction's one round trip: BEGIN, the settings, the caller check, the statement, COMMIT; only
	// the statement's SQL text is carried (the preamble never changes).
	var ops []string
	text := ""
	for _, a := range batch.Attributes {
		switch a.Key {
		case "db.operation.batch.statements":
			ops = a.Value.AsStringSlice()
		case "db.query.text":
			text = a.Value.AsString()
		}
	}
	if batch.Name != "batch" || batch.Parent.SpanID() != sp.SpanContext.SpanID() || !strings.Contains(text, "FROM employees") ||
		strings.Contains(text, "set_config") || strings.Join(ops, "|") != "BEGIN READ ONLY|settings|caller check|SELECT|COMMIT" {
		t.Fatalf("database span %q (parent %v) with statements %v and text %q", batch.Name, batch.Parent.SpanID(), ops, text)
	}
	if sp.Name != "GET /admin/employees/{id}" || sp.SpanKind != trace.SpanKindServer ||
		sp.Parent.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sp.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("span %q kind %v parent %v", sp.Name, sp.SpanKind, sp.Parent)
	}
	var status int64
	for _, a := range sp.Attributes {
		if a.Key == "http.response.status_code" {
			status = a.Value.AsInt64()
		}
	}
	if status != 404 {
		t.Fatalf("span attributes %v", sp.Attributes)
	}
	if logs := sink.String(); !strings.Contains(logs, `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`) ||
		!strings.Contains(logs, `"span_id":"`+sp.SpanContext.SpanID().String()+`"`) {
		t.Fatalf("the access log lacks the trace: %s", logs)
	}
	// OpenMetrics carries the request's trace as the latency observation's exemplar.
	r := h.call("GET", "/metrics", "scrape-token-for-tests", nil, "Accept", "application/openmetrics-text")
	expect(t, r, http.StatusOK)
	if !strings.Contains(string(r.Raw), `# {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"}`) {
		t.Fatalf("no exemplar of the trace on the latency histogram:\n%s", r.Raw)
	}
}

// A traced request's events carry its span as their trace context (for the hand-off's and the webhook
// attempts' spans); with tracing off, a caller's traceparent is not stored.
func TestTracing_EventsCarryTheRequestsTraceContextOnlyWhenTraced(t *testing.T) {
	t.Parallel()
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	contexts := func(org testfactory.Org) []*string {
		rows, err := testfactory.Pool(t).Query(t.Context(),
			`SELECT trace_context FROM webhook_events WHERE organization_id = $1 AND event_type LIKE '%checked_in'`, org.ID)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[*string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	untraced := setup(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Untraced"))
	expect(t, untraced.call("POST", "/attendance/check-in", tok, nil, "traceparent", parent), http.StatusCreated)
	if got := contexts(org); len(got) != 1 || got[0] != nil {
		t.Fatalf("untraced: trace contexts %v, want one NULL", got)
	}
	// Nor is it an exemplar: there is no such trace.
	r := untraced.call("GET", "/metrics", "", nil, "Accept", "application/openmetrics-text")
	expect(t, r, http.StatusOK)
	if strings.Contains(string(r.Raw), "4bf92f3577b34da6a3ce929d0e0e4736") {
		t.Fatal("untraced: the caller's trace id became an exemplar")
	}

	traced := setup(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	traced.server.WithTracerProvider(tp)
	org = testfactory.NewOrg(t)
	tok = testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Traced"))
	expect(t, traced.call("POST", "/attendance/check-in", tok, nil, "traceparent", parent), http.StatusCreated)
	var server tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindServer {
			server = s
		}
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + server.SpanContext.SpanID().String() + "-01"
	if got := contexts(org); len(got) != 1 || got[0] == nil || *got[0] != want {
		t.Fatalf("traced: trace contexts %v, want %s", got, want)
	}
}
