package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func TestInput_BadInputIsNever500(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	cases := []struct {
		name, method, path, body, contentType string
		status                                int
	}{
		{"invalid JSON", "POST", "/admin/employees", `{"name":`, "application/json", 400},
		{"wrong type", "POST", "/admin/employees", `{"name":["x"]}`, "application/json", 400},
		{"array body", "POST", "/admin/employees", `[1,2]`, "application/json", 400},
		{"empty body where one is needed", "POST", "/admin/employees", ``, "application/json", 400},
		{"not JSON", "POST", "/admin/employees", `name=x`, "application/x-www-form-urlencoded", 415},
		{"oversized body", "POST", "/admin/employees", `{"name":"` + strings.Repeat("x", 1_100_000) + `"}`, "application/json", 413},
		{"non-UUID id", "GET", "/admin/employees/123", ``, "", 400},
		{"non-UUID filter", "GET", "/admin/sessions?employee_id=abc", ``, "", 400},
		{"negative page", "GET", "/admin/sessions?page=-1", ``, "", 400},
		{"limit too big", "GET", "/admin/sessions?limit=1000", ``, "", 400},
		{"unknown status", "GET", "/attendance/my-sessions?status=weird", ``, "", 400},
		{"unknown route", "GET", "/no/such/route", ``, "", 404},
		{"wrong method", "DELETE", "/admin/sessions", ``, "", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			headers := []string{}
			if c.contentType != "" {
				headers = append(headers, "Content-Type", c.contentType)
			}
			var body any
			if c.body != "" {
				body = c.body
			}
			r := h.call(c.method, c.path, admin, body, headers...)
			if r.Status != c.status || r.Body["success"] != false || r.Body["code"] == nil {
				t.Fatalf("%s %s: %d %s, want %d in the error envelope", c.method, c.path, r.Status, r.Raw, c.status)
			}
		})
	}
}

func TestInput_EmptyJSONBodyIsAcceptedWhereNoneIsNeeded(t *testing.T) {
	t.Parallel()
	h := setup(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Empty")
	// Content-Type: application/json with no body at all, as the dashboard sends.
	r := h.call("POST", "/attendance/check-in", testfactory.EmployeeToken(t, emp), "", "Content-Type", "application/json")
	expect(t, r, http.StatusCreated)
}

func TestRequestID_IsEchoedWhenSaneAndGeneratedOtherwise(t *testing.T) {
	t.Parallel()
	h := setup(t)
	r := h.call("GET", "/health", "", nil, "X-Request-Id", "abc-123")
	if r.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("request id %q", r.Header.Get("X-Request-Id"))
	}
	r = h.call("GET", "/nope", "", nil, "X-Request-Id", "bad id with spaces")
	if id := r.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") || r.Body["requestId"] != id {
		t.Fatalf("request id %q body %s", id, r.Raw)
	}
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	h := setup(t)
	r := h.call("GET", "/health", "", nil)
	expect(t, r, http.StatusOK)
	if r.Body["status"] != "ok" || len(r.Body["config_hash"].(string)) != 12 {
		t.Fatalf("health %s", r.Raw)
	}
	r = h.call("GET", "/ready", "", nil)
	expect(t, r, http.StatusOK)
	expect(t, h.call("GET", "/", "", nil), http.StatusOK)
	spec := h.call("GET", "/openapi.json", "", nil)
	expect(t, spec, http.StatusOK)
	if spec.Body["openapi"] != "3.0.3" {
		t.Fatalf("openapi.json %s", spec.Raw[:100])
	}
}

func TestCORS_AllowedOriginGetsHeadersAndPreflight(t *testing.T) {
	t.Parallel()
	h := setup(t)
	r := h.call("OPTIONS", "/admin/sessions", "", nil, "Origin", "http://dashboard.test",
		"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization,content-type")
	if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "http://dashboard.test" ||
		r.Header.Get("Access-Control-Allow-Headers") != "authorization,content-type" {
		t.Fatalf("preflight %d %v", r.Status, r.Header)
	}
	r = h.call("GET", "/health", "", nil, "Origin", "http://evil.test")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin allowed: %v", r.Header)
	}
}

// When the database is unreachable, readiness and data routes answer 503 with Retry-After, never 500.
func TestDatabaseDown_Is503(t *testing.T) {
	t.Parallel()
	pool, err := db.NewPool(context.Background(), db.PoolConfig{URL: "postgres://fieldtrack@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	h := setupWith(t, testConfig(), pool)
	org := testfactory.NewOrg(t)
	r := h.call("GET", "/ready", "", nil)
	if r.Status != http.StatusServiceUnavailable || r.Body["status"] != "not_ready" {
		t.Fatalf("ready with database down: %d %s", r.Status, r.Raw)
	}
	admin := testfactory.AdminToken(t, org)
	r = h.call("GET", "/admin/sessions", admin, nil)
	expectError(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// The deep check says which part failed, in its own body.
	r = h.call("GET", "/internal/ready-deep", admin, nil)
	if r.Status != http.StatusServiceUnavailable || r.data()["status"] != "degraded" ||
		r.data()["checks"].(map[string]any)["database"].(map[string]any)["status"] != "error" {
		t.Fatalf("ready-deep with database down: %d %s", r.Status, r.Raw)
	}
	// Sign-in, the GoTrue routes and receipt uploads need the database too.
	login := map[string]any{"email": "someone@example.test", "password": "whatever it is"}
	expect(t, h.call("POST", "/auth/login", "", login), http.StatusServiceUnavailable)
	expect(t, h.call("POST", "/auth/v1/token?grant_type=password", "", login), http.StatusServiceUnavailable)
	expect(t, h.call("POST", "/auth/v1/token?grant_type=refresh_token", "", map[string]any{"refresh_token": "abc"}),
		http.StatusServiceUnavailable)
	expectError(t, h.call("GET", "/auth/v1/user", admin, nil), http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "")
	expectError(t, h.call("POST", "/auth/v1/logout", admin, nil), http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "")
	expectError(t, h.call("PUT", uploadPath+uuid.NewString()+"?expires=4102444800&signature=abc", "", []byte("%PDF-1.4"),
		"Content-Type", "application/pdf"), http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "")
}

// When every pooled connection is busy past the acquire timeout, the answer is 503 with Retry-After.
func TestPoolExhausted_Is503(t *testing.T) {
	t.Parallel()
	pool, err := db.NewPool(context.Background(), db.PoolConfig{URL: testfactory.URL(t), MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	held, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	cfg := testConfig()
	cfg.DBAcquireTimeout = 100 * time.Millisecond
	h := setupWith(t, cfg, pool)
	r := h.call("GET", "/admin/sessions", testfactory.AdminToken(t, testfactory.NewOrg(t)), nil)
	expectError(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "")
	if r.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
}

func TestDecodeBody_KeysInAnotherCaseAreDroppedAndExactOnesAreCheap(t *testing.T) {
	t.Parallel()
	names := namesOf(reflect.TypeOf(&webhookBody{}))
	for body, want := range map[string]bool{
		`{"url":"https://a.example","events":["session.checkin"],"secret":"0123456789abcdef"}`: false,
		`{"url":"https://a.example","URL":null}`:                                               true,
		`{"url":"x","Is_Active":false}`:                                                        true,
		`{"\u0075rl":"x"}`:                                                                     true,
		`{"ſecret":"x"}`:                                                                       true,
		`{"description":"a \"URL\": b","unknown":1}`:                                           false,
		`{"urls":"x","URLS":"y"}`:                                                              false,
	} {
		if got := hasInexactKey([]byte(body), names); got != want {
			t.Errorf("hasInexactKey(%s) = %v, want %v", body, got, want)
		}
	}
	r := httptest.NewRequest("POST", "/admin/webhooks", strings.NewReader(`{"url":"https://a.example","URL":null,"Secret":"s"}`))
	var b webhookBody
	if err := decodeBody(r, &b); err != nil || b.URL == nil || *b.URL != "https://a.example" || b.Secret != nil {
		t.Fatalf("decoded %+v, %v: want the exact url and no secret", b, err)
	}
}
