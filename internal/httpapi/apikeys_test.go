package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// newKey creates an API key with scopes through the API and returns its text and id.
func newKey(t *testing.T, h *harness, adminTok string, scopes ...string) (string, string) {
	t.Helper()
	res := h.call("POST", "/admin/api-keys", adminTok, map[string]any{"name": "integration", "scopes": scopes})
	expect(t, res, http.StatusCreated)
	key, _ := res.data()["key"].(string)
	rec, _ := res.data()["record"].(map[string]any)
	id, _ := rec["id"].(string)
	return key, id
}

// withKey calls with an X-API-Key header.
func (h *harness) withKey(method, path, key string, body any) response {
	h.t.Helper()
	return h.call(method, path, "", body, "X-API-Key", key)
}

func TestAPIKeys_ShownOnceStoredAsAHashAndManagedByTheirOrganizationOnly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	tok, otherTok := testfactory.AdminToken(t, org), testfactory.AdminToken(t, other)

	res := h.call("POST", "/admin/api-keys", tok, map[string]any{"name": "billing sync", "scopes": []string{"read:employees", "read:employees"}})
	expect(t, res, http.StatusCreated)
	key, _ := res.data()["key"].(string)
	if !regexp.MustCompile(`^ft_live_[0-9a-f]{48}$`).MatchString(key) {
		t.Fatalf("key %q", key)
	}
	rec, _ := res.data()["record"].(map[string]any)
	id, _ := rec["id"].(string)
	if rec["key_preview"] != key[:16]+"..."+key[52:] || rec["active"] != true {
		t.Fatalf("record %v", rec)
	}
	if sc, _ := rec["scopes"].([]any); len(sc) != 1 {
		t.Fatalf("repeated scopes kept: %v", rec["scopes"])
	}
	var stored []byte
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT key_hash FROM api_keys WHERE id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 32 || strings.Contains(string(stored), key) {
		t.Fatalf("stored %x", stored)
	}

	list := h.call("GET", "/admin/api-keys", tok, nil)
	expect(t, list, http.StatusOK)
	if len(list.list()) != 1 || strings.Contains(string(list.Raw), key) {
		t.Fatalf("list %s", list.Raw)
	}
	if n := len(h.call("GET", "/admin/api-keys", otherTok, nil).list()); n != 0 {
		t.Fatalf("another organization lists %d keys", n)
	}

	expectError(t, h.call("POST", "/admin/api-keys", tok, map[string]any{"name": "x", "scopes": []string{"admin:all"}}),
		http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("POST", "/admin/api-keys", tok, map[string]any{"name": "mixed", "scopes": []string{"admin:all", "read:sessions"}}),
		http.StatusBadRequest, "VALIDATION_ERROR", "admin:all cannot be combined with other scopes")
	expectError(t, h.call("POST", "/admin/api-keys", tok, map[string]any{"name": "none", "scopes": []string{}}),
		http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("PATCH", "/admin/api-keys/"+id, tok, map[string]any{}), http.StatusBadRequest, "VALIDATION_ERROR",
		"At least one field must be provided")

	for _, c := range []struct{ method, body string }{{"PATCH", `{"name":"stolen"}`}, {"DELETE", ""}} {
		var body any
		if c.body != "" {
			body = c.body
		}
		expectError(t, h.call(c.method, "/admin/api-keys/"+id, otherTok, body), http.StatusNotFound, "NOT_FOUND", "API key not found")
	}
	res = h.call("PATCH", "/admin/api-keys/"+id, tok, map[string]any{"name": "billing", "scopes": []string{"read:sessions"}})
	expect(t, res, http.StatusOK)
	if res.data()["name"] != "billing" {
		t.Fatalf("patched %v", res.data())
	}
	expect(t, h.call("DELETE", "/admin/api-keys/"+id, tok, nil), http.StatusNoContent)
	expectError(t, h.call("DELETE", "/admin/api-keys/"+id, tok, nil), http.StatusNotFound, "NOT_FOUND", "API key not found")
}

func TestAPIKeys_ActAsAdminWithinTheirScopesAndNeverManageKeys(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	emp := testfactory.NewEmployee(t, org, "Scoped")
	readEmployees, _ := newKey(t, h, tok, "read:employees")
	all, _ := newKey(t, h, tok, "admin:all")

	expect(t, h.withKey("GET", "/admin/employees", readEmployees, nil), http.StatusOK)
	expect(t, h.withKey("GET", "/admin/employees/"+emp.ID.String(), readEmployees, nil), http.StatusOK)
	expect(t, h.withKey("GET", "/auth/me", readEmployees, nil), http.StatusOK)
	expectError(t, h.withKey("GET", "/admin/sessions", readEmployees, nil), http.StatusForbidden, "FORBIDDEN",
		"API key missing required scope: read:sessions")
	expectError(t, h.withKey("POST", "/admin/employees", readEmployees, map[string]any{"name": "X"}), http.StatusForbidden,
		"FORBIDDEN", "API key missing required scope: admin:all")
	expect(t, h.withKey("GET", "/admin/sessions", all, nil), http.StatusOK)
	expectError(t, h.withKey("POST", "/locations", all, map[string]any{}), http.StatusForbidden, "FORBIDDEN",
		"This action requires EMPLOYEE role")
	expectError(t, h.withKey("GET", "/admin/api-keys", readEmployees, nil), http.StatusForbidden, "FORBIDDEN",
		"API key missing required scope: admin:all")
	expectError(t, h.withKey("GET", "/admin/api-keys", all, nil), http.StatusForbidden, "JWT_REQUIRED",
		"This endpoint requires JWT user authentication")
	expectError(t, h.withKey("POST", "/admin/api-keys", all, map[string]any{"name": "escalate", "scopes": []string{"admin:all"}}),
		http.StatusForbidden, "JWT_REQUIRED", "This endpoint requires JWT user authentication")

	expectError(t, h.withKey("GET", "/admin/employees", "ft_live_123", nil), http.StatusUnauthorized, "INVALID_API_KEY",
		"Invalid API key format")
	expectError(t, h.withKey("GET", "/admin/employees", "ft_live_"+strings.Repeat("ab", 24), nil), http.StatusUnauthorized,
		"INVALID_API_KEY", "Invalid API key")
	// Upper case is the same key.
	expect(t, h.withKey("GET", "/admin/employees", strings.ToUpper(readEmployees[:8])+strings.ToUpper(readEmployees[8:]), nil), http.StatusOK)
	// With both headers the JWT is used.
	res := h.call("GET", "/admin/api-keys", tok, nil, "X-API-Key", all)
	expect(t, res, http.StatusOK)
}

// Two servers on one database stand for two processes: each has its own cache of keys, and a change made
// through one counts on the other from its next request.
func TestAPIKeys_RevocationAndNarrowerScopesCountAtOnceOnEveryProcess(t *testing.T) {
	t.Parallel()
	a, b := setup(t), setup(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	key, id := newKey(t, a, tok, "read:employees", "read:sessions")
	for _, h := range []*harness{a, b} { // both have it cached now
		expect(t, h.withKey("GET", "/admin/sessions", key, nil), http.StatusOK)
	}
	expect(t, a.call("PATCH", "/admin/api-keys/"+id, tok, map[string]any{"scopes": []string{"read:employees"}}), http.StatusOK)
	expectError(t, b.withKey("GET", "/admin/sessions", key, nil), http.StatusForbidden, "FORBIDDEN",
		"API key missing required scope: read:sessions")
	expect(t, b.withKey("GET", "/admin/employees", key, nil), http.StatusOK)

	expect(t, a.call("PATCH", "/admin/api-keys/"+id, tok, map[string]any{"active": false}), http.StatusOK)
	expectError(t, b.withKey("GET", "/admin/employees", key, nil), http.StatusUnauthorized, "INVALID_API_KEY", "Invalid API key")
	expectError(t, b.withKey("GET", "/auth/me", key, nil), http.StatusUnauthorized, "INVALID_API_KEY", "Invalid API key")

	res := a.call("PATCH", "/admin/api-keys/"+id, tok, map[string]any{"active": true, "scopes": []string{"read:sessions"}})
	expect(t, res, http.StatusOK)
	if res.data()["revoked_at"] != nil {
		t.Fatalf("restored key still revoked: %v", res.data())
	}
	expect(t, a.withKey("GET", "/admin/sessions", key, nil), http.StatusOK)
	// b remembers the key as unknown for a few seconds (keyMissTTL), then finds it restored.
	testfactory.Eventually(t, 10*time.Second, "the restored key to work on the other process", func() (bool, error) {
		return b.withKey("GET", "/admin/sessions", key, nil).Status == http.StatusOK, nil
	})
}

func TestAPIKeys_CountRequestsAndErrorsWithoutAWritePerRequest(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	key, id := newKey(t, h, tok, "read:employees")
	for range 3 {
		expect(t, h.withKey("GET", "/admin/employees", key, nil), http.StatusOK)
	}
	expect(t, h.withKey("GET", "/admin/sessions", key, nil), http.StatusForbidden)
	var requests, errors int64
	read := func() {
		if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT request_count, error_count FROM api_keys WHERE id = $1`,
			id).Scan(&requests, &errors); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if requests != 0 || errors != 0 {
		t.Fatalf("written before the flush: %d requests, %d errors", requests, errors)
	}
	if err := h.server.FlushKeyUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	read()
	if requests != 4 || errors != 1 {
		t.Fatalf("after the flush: %d requests, %d errors; want 4 and 1", requests, errors)
	}
	var rec map[string]any
	for _, k := range h.call("GET", "/admin/api-keys", tok, nil).list() {
		if k["id"] == id {
			rec = k
		}
	}
	if rec["request_count"] != 4.0 || rec["error_count"] != 1.0 || rec["last_used_at"] == nil {
		t.Fatalf("listed %v", rec)
	}
}

// auditEvents returns the audit rows an admin sees, newest first.
func auditEvents(t *testing.T, h *harness, tok, query string) []map[string]any {
	t.Helper()
	res := h.call("GET", "/admin/audit-log"+query, tok, nil)
	expect(t, res, http.StatusOK)
	return res.list()
}

func TestAuditLog_EveryAdminActionInItsTransactionForItsOrganizationOnly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	tok, otherTok := testfactory.AdminToken(t, org), testfactory.AdminToken(t, other)
	emp := testfactory.NewEmployee(t, org, "Audited")
	empTok := testfactory.EmployeeToken(t, emp)

	created := h.call("POST", "/admin/employees", tok, map[string]any{"name": "New Hire"})
	expect(t, created, http.StatusCreated)
	newID, _ := created.data()["id"].(string)
	expect(t, h.call("PATCH", "/admin/employees/"+newID, tok, map[string]any{"name": "New Name"}), http.StatusOK)
	expect(t, h.call("PATCH", "/admin/employees/"+newID+"/status", tok, map[string]any{"is_active": false}), http.StatusOK)

	expect(t, h.call("POST", "/attendance/check-in", empTok, nil), http.StatusCreated)
	forced := h.call("POST", "/admin/force-checkout", tok, map[string]any{"employee_id": emp.ID})
	expect(t, forced, http.StatusOK)
	sessionID, _ := forced.data()["id"].(string)
	expect(t, h.call("POST", "/attendance/"+sessionID+"/recalculate", tok, nil), http.StatusOK)
	expect(t, h.call("POST", "/attendance/"+sessionID+"/recalculate", empTok, nil), http.StatusOK) // its own: not audited
	expect(t, h.call("POST", "/attendance/check-in", empTok, nil), http.StatusCreated)
	expect(t, h.call("POST", "/attendance/check-out", empTok, nil), http.StatusOK) // the employee's own: not audited

	hook := h.call("POST", "/admin/webhooks", tok, map[string]any{"url": "https://example.com/hook?token=receiver-secret",
		"events": []string{"session.checkin"}, "secret": "0123456789abcdef0123"})
	expect(t, hook, http.StatusCreated)
	hookID, _ := hook.data()["id"].(string)
	expect(t, h.call("PATCH", "/admin/webhooks/"+hookID, tok, map[string]any{"secret": "fedcba9876543210fedcba"}), http.StatusOK)
	expect(t, h.call("POST", "/admin/webhooks/"+hookID+"/test", tok, nil), http.StatusAccepted)
	expect(t, h.call("DELETE", "/admin/webhooks/"+hookID, tok, nil), http.StatusNoContent)

	key, keyID := newKey(t, h, tok, "write:expenses")
	expense := fileExpense(t, h, empTok, 12.5, "Parking")
	expect(t, h.withKey("PATCH", "/admin/expenses/"+expense["id"].(string), key, map[string]any{"status": "APPROVED"}), http.StatusOK)
	expect(t, h.call("PATCH", "/admin/api-keys/"+keyID, tok, map[string]any{"active": false}), http.StatusOK)

	rows := auditEvents(t, h, tok, "?limit=200")
	var events []string
	for i := len(rows) - 1; i >= 0; i-- {
		events = append(events, rows[i]["event"].(string))
	}
	want := []string{"employee.created", "employee.updated", "employee.status_changed", "session.force_checkout",
		"session.recalculated", "webhook.created", "webhook.updated", "webhook.tested", "webhook.deleted", "api_key.created",
		"expense.reviewed", "api_key.revoked"}
	if strings.Join(events, " ") != strings.Join(want, " ") {
		t.Fatalf("audit events\n got %v\nwant %v", events, want)
	}
	byEvent := map[string]map[string]any{}
	for _, r := range rows {
		byEvent[r["event"].(string)] = r
	}
	if r := byEvent["employee.updated"]; r["actor_type"] != "user" || r["actor_id"] != org.AdminUserID.String() ||
		r["resource_id"] != newID {
		t.Fatalf("employee.updated %v", r)
	}
	changes := byEvent["employee.updated"]["payload"].(map[string]any)["changes"].(map[string]any)
	if name, _ := changes["name"].(map[string]any); name["old"] != "New Hire" || name["new"] != "New Name" || len(changes) != 1 {
		t.Fatalf("employee.updated changes %v", changes)
	}
	secret := byEvent["webhook.updated"]["payload"].(map[string]any)["changes"].(map[string]any)["secret"]
	if s, _ := secret.(map[string]any); s["changed"] != true || len(s) != 1 || strings.Contains(string(h.call("GET",
		"/admin/audit-log", tok, nil).Raw), "fedcba9876543210fedcba") || strings.Contains(string(h.call("GET",
		"/admin/audit-log", tok, nil).Raw), "receiver-secret") {
		t.Fatalf("a secret in the audit log: %v", secret)
	}
	if r := byEvent["expense.reviewed"]; r["actor_type"] != "api_key" || r["actor_id"] != keyID {
		t.Fatalf("expense.reviewed by a key: %v", r)
	}
	if n := len(auditEvents(t, h, otherTok, "")); n != 0 {
		t.Fatalf("another organization sees %d audit rows", n)
	}
	expectError(t, h.call("GET", "/admin/audit-log", empTok, nil), http.StatusForbidden, "FORBIDDEN", "This action requires ADMIN role")

	// Paging: before = the created_at of the last row received; an event filter.
	first := auditEvents(t, h, tok, "?limit=4")
	last := first[len(first)-1]["created_at"].(string)
	next := auditEvents(t, h, tok, "?limit=4&before="+strings.ReplaceAll(last, "+", "%2B"))
	if len(first) != 4 || len(next) != 4 || next[0]["id"] == first[3]["id"] {
		t.Fatalf("pages of 4: %d then %d", len(first), len(next))
	}
	if got := auditEvents(t, h, tok, "?event=webhook.tested"); len(got) != 1 {
		t.Fatalf("event filter: %d rows", len(got))
	}
	expectError(t, h.call("GET", "/admin/audit-log?before=yesterday", tok, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
}

func TestAuditLog_SignInsAndSignOutsAndNoWayToChangeARow(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	login := testfactory.GivePassword(t, org.ID, org.AdminUserID)
	session := signIn(t, h, login)
	tok, _ := session["access_token"].(string)
	expect(t, h.call("POST", "/auth/v1/logout", tok, nil, "apikey", "anon-key"), http.StatusNoContent)
	rows := auditEvents(t, h, testfactory.AdminToken(t, org), "")
	if len(rows) != 2 || rows[0]["event"] != "auth.logout" || rows[1]["event"] != "auth.login" ||
		rows[1]["actor_id"] != org.AdminUserID.String() {
		t.Fatalf("audit rows %v", rows)
	}
	for _, q := range []string{`UPDATE admin_audit_log SET event = 'x'`, `DELETE FROM admin_audit_log`,
		`SELECT app.audit('api_key.revoked', 'api_key', 'forged', '{}')`,
		`INSERT INTO admin_audit_log (organization_id, event, actor_type, resource_type) VALUES ('` + org.ID.String() + `', 'forged', 'user', 'x')`} {
		err := db.InTx(t.Context(), testfactory.Pool(t), testfactory.AdminClaims(org), db.TxOptions{}, func(tx db.DBTX) error {
			_, err := tx.Exec(t.Context(), q)
			return err
		})
		if err == nil {
			t.Fatalf("%s succeeded as the API role", q)
		}
	}
	if _, err := testfactory.Pool(t).Exec(t.Context(), `UPDATE admin_audit_log SET event = 'x' WHERE organization_id = $1`,
		org.ID); err == nil {
		t.Fatal("the owner changed an audit row")
	}
	err := db.InTx(t.Context(), testfactory.Pool(t), db.Claims{}, db.TxOptions{Role: "fieldtrack_owner"}, func(tx db.DBTX) error {
		_, err := tx.Exec(t.Context(), `DELETE FROM admin_audit_log WHERE organization_id = $1`, org.ID)
		return err
	})
	if err == nil {
		t.Fatal("the definer functions' owner deleted audit rows")
	}
}

func TestRateLimits_PerKeyAndPerAddressWithHeadersAndRetryAfter(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.RateLimitDisabled = false
	cfg.RateLimitUserPerMinute, cfg.RateLimitOrgPerMinute, cfg.RateLimitAPIKeyPerMinute = 1000, 1000, 5
	cfg.RateLimitIPPerMinute, cfg.RateLimitProcesses = 1000, 1
	cfg.RateLimitLocationsPer10s, cfg.RateLimitExpensesPerMinute, cfg.RateLimitRecalculatePerMinute = 10, 10, 5
	h := setupWith(t, cfg, testfactory.Pool(t))
	org := testfactory.NewOrg(t)
	key, _ := newKey(t, h, testfactory.AdminToken(t, org), "read:employees")
	for i := range 5 {
		res := h.withKey("GET", "/admin/employees", key, nil)
		expect(t, res, http.StatusOK)
		if res.Header.Get("X-RateLimit-Limit") != "5" || res.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(4-i) {
			t.Fatalf("request %d: limit %q remaining %q", i, res.Header.Get("X-RateLimit-Limit"), res.Header.Get("X-RateLimit-Remaining"))
		}
	}
	res := h.withKey("GET", "/admin/employees", key, nil)
	expectError(t, res, http.StatusTooManyRequests, "RATE_LIMITED", "")
	if ra := res.Header.Get("Retry-After"); ra != "12" || res.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("Retry-After %q (want 12: one request of 5 a minute), remaining %q", ra, res.Header.Get("X-RateLimit-Remaining"))
	}

	// Before authentication: bad credentials from one address are limited too.
	cfg.RateLimitIPPerMinute = 3
	h2 := setupWith(t, cfg, testfactory.Pool(t))
	for range 3 {
		expect(t, h2.call("GET", "/admin/employees", "not-a-token", nil), http.StatusUnauthorized)
	}
	res = h2.call("GET", "/admin/employees", "not-a-token", nil)
	expectError(t, res, http.StatusTooManyRequests, "RATE_LIMITED", "")
	if res.Header.Get("Retry-After") != "20" {
		t.Fatalf("Retry-After %q, want 20", res.Header.Get("Retry-After"))
	}
	expect(t, h2.call("GET", "/health", "", nil), http.StatusOK) // probes are never limited
}

// With RATE_LIMIT_PROCESSES=2 each process allows half: over two processes the sum stays the limit.
func TestRateLimits_EachProcessEnforcesItsShare(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.RateLimitDisabled = false
	cfg.RateLimitUserPerMinute, cfg.RateLimitOrgPerMinute, cfg.RateLimitAPIKeyPerMinute = 1000, 1000, 10
	cfg.RateLimitIPPerMinute, cfg.RateLimitProcesses = 1000, 2
	cfg.RateLimitLocationsPer10s, cfg.RateLimitExpensesPerMinute, cfg.RateLimitRecalculatePerMinute = 10, 10, 5
	a, b := setupWith(t, cfg, testfactory.Pool(t)), setupWith(t, cfg, testfactory.Pool(t))
	key, _ := newKey(t, a, testfactory.AdminToken(t, testfactory.NewOrg(t)), "read:employees")
	passed := map[*harness]int{}
	for i := range 30 {
		h := a
		if i%2 == 1 {
			h = b
		}
		if h.withKey("GET", "/admin/employees", key, nil).Status == http.StatusOK {
			passed[h]++
		}
	}
	if passed[a] != 5 || passed[b] != 5 {
		t.Fatalf("passed %d on one process and %d on the other, want 5 and 5 (10 a minute over 2)", passed[a], passed[b])
	}
}

func TestSecurityHeaders_TheHelmetSetOnEveryAnswer(t *testing.T) {
	t.Parallel()
	h := setup(t)
	for _, path := range []string{"/health", "/nowhere", "/admin/employees"} {
		res := h.call("GET", path, "", nil, "Origin", "http://dashboard.test")
		for name, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN", "Cross-Origin-Resource-Policy": "same-origin",
			"X-Dns-Prefetch-Control": "off", "X-Permitted-Cross-Domain-Policies": "none", "X-Xss-Protection": "0",
			"Origin-Agent-Cluster": "?1", "Access-Control-Allow-Origin": "http://dashboard.test",
		} {
			if got := res.Header.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", path, name, got, want)
			}
		}
		if !strings.Contains(res.Header.Get("Content-Security-Policy"), "object-src 'none'") ||
			!strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-RateLimit-Remaining") {
			t.Errorf("%s: CSP %q, exposed %q", path, res.Header.Get("Content-Security-Policy"), res.Header.Get("Access-Control-Expose-Headers"))
		}
	}
}

// Credentials never reach the logs: not the bearer token, not the API key, not the stream's ?token=,
// refused or accepted; the refusals are logged (with the route and address) and counted.
func TestLogs_NeverCarryCredentialsAndCountRefusals(t *testing.T) {
	t.Parallel()
	var sink syncBuffer
	cfg := testConfig()
	cfg.RateLimitDisabled = false
	cfg.RateLimitUserPerMinute, cfg.RateLimitOrgPerMinute, cfg.RateLimitIPPerMinute = 1000, 1000, 1000
	cfg.RateLimitLocationsPer10s, cfg.RateLimitExpensesPerMinute, cfg.RateLimitRecalculatePerMinute = 10, 10, 5
	cfg.RateLimitAPIKeyPerMinute = 1
	h := setupWithLog(t, cfg, testfactory.Pool(t), slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug})))
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	key, _ := newKey(t, h, tok, "admin:all")
	badKey := "ft_live_" + strings.Repeat("cd", 24)
	expect(t, h.withKey("GET", "/admin/employees", key, nil), http.StatusOK)
	expect(t, h.withKey("GET", "/admin/employees", key, nil), http.StatusTooManyRequests)
	expect(t, h.withKey("GET", "/admin/employees", badKey, nil), http.StatusUnauthorized)
	expect(t, h.call("GET", "/admin/employees", tok+"x", nil), http.StatusUnauthorized)
	expect(t, h.call("GET", "/admin/events?token="+url.QueryEscape(tok+"y"), "", nil), http.StatusUnauthorized)
	logs := sink.String()
	for _, secret := range []string{tok, key, badKey, key[8:], badKey[8:]} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a credential in the logs:\n%s", logs)
		}
	}
	for _, want := range []string{`"msg":"authentication refused"`, `"msg":"rate limited"`, `"route":"/admin/events"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("no %s in the logs:\n%s", want, logs)
		}
	}
	metrics := h.call("GET", "/metrics", "", nil)
	for _, want := range []string{`security_rate_limit_hits_total{route="/admin/employees"} 1`,
		`security_auth_failures_total{code="INVALID_API_KEY"} 1`, `security_auth_failures_total{code="UNAUTHORIZED"} 2`} {
		if !strings.Contains(string(metrics.Raw), want) {
			t.Fatalf("no %s in /metrics", want)
		}
	}
}

// An API key's stream ends once the key is revoked or loses admin:all, at the next heartbeat.
func TestAPIKeys_AStreamEndsWhenItsKeyIsRevokedOrNarrowed(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.SSEHeartbeat = 200 * time.Millisecond
	h := setupWith(t, cfg, testfactory.Pool(t))
	hub := events.NewHub(testfactory.Pool(t), 100, slog.New(slog.DiscardHandler))
	go hub.Run(t.Context())
	h.server.WithBackground(Background{Hub: hub})
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	for _, change := range []map[string]any{{"scopes": []string{"read:employees"}}, {"active": false}} {
		key, id := newKey(t, h, tok, "admin:all")
		req, err := http.NewRequestWithContext(t.Context(), "GET", h.url+"/admin/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("stream: %d", res.StatusCode)
		}
		expect(t, h.call("PATCH", "/admin/api-keys/"+id, tok, change), http.StatusOK)
		ended := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, res.Body); ended <- err }()
		select {
		case err := <-ended:
			if err != nil {
				t.Fatalf("after %v the stream failed instead of ending: %v", change, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the stream of a key changed by %v still open after 10 s", change)
		}
		res.Body.Close()
	}
}
