package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

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
	if r := h.call("GET", "/metrics", "wrong", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("metrics with a wrong token: %d", r.Status)
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
