package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, serve exports its request spans over OTLP/HTTP to that endpoint.
func TestTracing_ServeExportsSpansOverOTLP(t *testing.T) {
	t.Parallel()
	var batches, bytes atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" && len(body) > 0 {
			batches.Add(1)
			bytes.Add(int64(len(body)))
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(collector.Close)
	p := startProcess(t, "traced", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
		"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": "fieldtrack-e2e"})
	res, err := http.Get(p.base + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	testfactory.Eventually(t, 20*time.Second, "a batch of spans at the collector", func() (bool, error) {
		return batches.Load() > 0 && bytes.Load() > 0, nil
	})
}

// span is what the test collector keeps of an exported span.
type span struct {
	name, traceID, spanID, parentID string
	text                            string // the attributes and status, as text
}

// otlpCollector is an OTLP/HTTP trace receiver that decodes what it is sent.
type otlpCollector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []span
}

func newOTLPCollector(t *testing.T) *otlpCollector {
	c := &otlpCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.spans = append(c.spans, span{name: s.Name, traceID: hex.EncodeToString(s.TraceId),
						spanID: hex.EncodeToString(s.SpanId), parentID: hex.EncodeToString(s.ParentSpanId),
						text: fmt.Sprint(s.Attributes, s.Status, s.Events)})
				}
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// trace returns the spans received of one trace.
func (c *otlpCollector) trace(id string) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, s := range c.spans {
		if s.traceID == id {
			out = append(out, s)
		}
	}
	return out
}

// One trace joins a check-in's request span, its database span, the listener's hand-off of the events it
// committed and the webhook attempt they caused; the receiver gets the attempt's span as its traceparent.
// On a database of its own, so that no other test's server (untraced) delivers the webhook first.
func TestTracing_OneTraceFromRequestToWebhookAttempt(t *testing.T) {
	t.Parallel()
	dbURL, owner := testfactory.MigratedDatabase(t, 4)
	collector := newOTLPCollector(t)
	received := make(chan http.Header, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		received <- r.Header.Clone()
	}))
	t.Cleanup(receiver.Close)

	org := testfactory.NewOrgIn(t, owner)
	emp := testfactory.NewEmployeeIn(t, owner, org, "Traced")
	if _, err := owner.Exec(context.Background(), `INSERT INTO webhooks (organization_id, url, secret, events)
		VALUES ($1, $2, 'whsec-0123456789abcdef', '{employee.checked_in}')`, org.ID, receiver.URL+"/s3cret-path?token=s3cret"); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "traced", map[string]string{"DATABASE_URL": dbURL, "METRICS_SCRAPE_TOKEN": "scrape-token-for-tests",
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL, "OTEL_BSP_SCHEDULE_DELAY": "50",
		"WEBHOOK_WORKER_ENABLED": "true", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"})

	waitStreaming(t, p.base, "scrape-token-for-tests", owner, org)
	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, err := http.NewRequest(http.MethodPost, p.base+"/attendance/check-in", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testfactory.EmployeeToken(t, emp))
	req.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	req.Header.Set("tracestate", "vendor=opaque")
	req.Header.Set("baggage", "user=someone")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("check-in: %d", res.StatusCode)
	}

	var hook http.Header
	select {
	case hook = <-received:
	case <-time.After(30 * time.Second):
		p.logs.dump(t, "traced", 40)
		t.Fatal("no webhook delivery within 30 s")
	}
	header := hook.Get("traceparent")
	if hook.Get("tracestate") != "" || hook.Get("baggage") != "" {
		t.Errorf("the webhook got tracestate %q and baggage %q: only traceparent goes out", hook.Get("tracestate"), hook.Get("baggage"))
	}
	parts := strings.Split(header, "-")
	if len(parts) != 4 || parts[1] != traceID || parts[3] != "01" {
		t.Fatalf("the webhook's traceparent = %q, want one of trace %s, sampled", header, traceID)
	}

	// The spans arrive in batches; wait for the four kinds, then check how they hang together.
	var spans map[string]span
	testfactory.Eventually(t, 20*time.Second, "the trace's spans at the collector", func() (bool, error) {
		spans = map[string]span{}
		for _, s := range collector.trace(traceID) {
			if _, seen := spans[s.name]; !seen {
				spans[s.name] = s
			}
		}
		for _, name := range []string{"POST /attendance/check-in", "batch", "outbox hand-off", "webhook attempt"} {
			if _, ok := spans[name]; !ok {
				return false, fmt.Errorf("no %q span yet; have %v", name, spans)
			}
		}
		return true, nil
	})
	got := spans
	server := got["POST /attendance/check-in"]
	if server.parentID != callerSpan {
		t.Errorf("the request span's parent = %s, want the caller's %s", server.parentID, callerSpan)
	}
	for _, name := range []string{"outbox hand-off", "webhook attempt"} {
		if got[name].parentID != server.spanID {
			t.Errorf("%q's parent = %s, want the request span %s", name, got[name].parentID, server.spanID)
		}
	}
	if parts[2] != got["webhook attempt"].spanID {
		t.Errorf("the webhook's traceparent names span %s, want the attempt's %s", parts[2], got["webhook attempt"].spanID)
	}
	// The request's first round trip (BEGIN, the settings, the statement, COMMIT) is its database span.
	// No span names the webhook URL's secret path or query.
	batchUnderRequest := false
	for _, s := range collector.trace(traceID) {
		batchUnderRequest = batchUnderRequest || (s.name == "batch" && s.parentID == server.spanID)
		if strings.Contains(s.text, "s3cret") {
			t.Errorf("span %q tells the webhook URL's secret: %s", s.name, s.text)
		}
	}
	if !batchUnderRequest {
		t.Errorf("no database batch span under the request span %s", server.spanID)
	}
}
