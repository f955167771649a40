package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

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
