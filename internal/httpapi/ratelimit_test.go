package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func TestRateLimit_OverTheRouteLimitIs429WithRetryAfter(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.RateLimitDisabled = false
	cfg.RateLimitUserPerMinute, cfg.RateLimitOrgPerMinute = 1000, 1000
	cfg.RateLimitLocationsPer10s, cfg.RateLimitExpensesPerMinute, cfg.RateLimitRecalculatePerMinute = 2, 10, 5
	h := setupWith(t, cfg, testfactory.Pool(t))
	org := testfactory.NewOrg(t)
	emp, other := testfactory.NewEmployee(t, org, "Fast"), testfactory.NewEmployee(t, org, "Other")
	session := testfactory.OpenSession(t, emp, time.Now().Add(-time.Hour))
	tok := testfactory.EmployeeToken(t, emp)
	fix := func(i int) map[string]any {
		return map[string]any{"session_id": session, "latitude": 52.0, "longitude": 13.0, "accuracy": 5,
			"recorded_at": time.Now().Add(-time.Duration(i) * time.Minute).UTC().Format(time.RFC3339)}
	}
	expect(t, h.call("POST", "/locations", tok, fix(1)), http.StatusCreated)
	expect(t, h.call("POST", "/locations", tok, fix(2)), http.StatusCreated)
	r := h.call("POST", "/locations", tok, fix(3))
	expectError(t, r, http.StatusTooManyRequests, "RATE_LIMITED", "")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	// The limit is per caller and route: another employee and another route still pass.
	expectError(t, h.call("POST", "/locations", testfactory.EmployeeToken(t, other),
		map[string]any{"session_id": uuid.New(), "latitude": 1, "longitude": 1, "accuracy": 1,
			"recorded_at": time.Now().UTC().Format(time.RFC3339)}), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expect(t, h.call("GET", "/attendance/my-sessions", tok, nil), http.StatusOK)
}

func TestRateLimiter_RefillsAndCountsTheOrganization(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.RateLimitUserPerMinute, cfg.RateLimitOrgPerMinute = 100, 3
	cfg.RateLimitLocationsPer10s, cfg.RateLimitExpensesPerMinute, cfg.RateLimitRecalculatePerMinute = 10, 10, 5
	rl := newRateLimiter(cfg)
	now := time.Unix(1_000_000, 0)
	rl.now = func() time.Time { return now }
	org := uuid.New()
	a := auth.Identity{Subject: "a", OrgID: org}
	b := auth.Identity{Subject: "b", OrgID: org}
	for i, who := range []auth.Identity{a, b, a} {
		if d := rl.allow(who, "GET /x"); !d.ok {
			t.Fatalf("request %d refused under the organization's limit", i)
		}
	}
	d := rl.allow(b, "GET /x")
	if d.ok || d.wait <= 0 || d.wait > 20*time.Second {
		t.Fatalf("fourth request of the organization: ok=%v wait=%v, want refused for about 20 s", d.ok, d.wait)
	}
	now = now.Add(d.wait)
	if d := rl.allow(b, "GET /x"); !d.ok {
		t.Fatal("still refused after waiting Retry-After")
	}
}
