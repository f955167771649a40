package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// The authorization matrix: every route of the route table × every kind of caller → the answer it must
// get. The rows say, independently of the server's own tables, who may call a route, which scope an API
// key needs and which of the organization's objects its path names. A route without a row fails.

type matrixRow struct {
	who   access // who may call it
	scope string // the scope a key needs (original-api §1.7); "" any key
	id    string // the object the path's {id} names: employee, session, expense, webhook, delivery, key, other
	body  any    // a valid body, so that an allowed caller reaches the handler (and another org's the lookup)
	query string // a valid query string, for the same reason
	own   bool   // a public route that checks credentials of its own (not in the matrix)
	// employee: the caller must act for an employee (403 "Employee context required" otherwise: admins
	// without one, keys)
	employee bool
}

var authzMatrix = map[string]matrixRow{
	"GET /":                                       {who: public},
	"GET /health":                                 {who: public},
	"GET /ready":                                  {who: public},
	"GET /openapi.json":                           {who: public},
	"GET /docs":                                   {who: public},
	"GET /docs/{asset}":                           {who: public},
	"GET /metrics":                                {who: public},
	"POST /attendance/check-in":                   {who: employeeOnly, scope: scopeAdminAll},
	"POST /attendance/check-out":                  {who: employeeOnly, scope: scopeAdminAll},
	"GET /attendance/my-sessions":                 {who: anyUser, scope: scopeReadSessions},
	"GET /attendance/org-sessions":                {who: adminOnly, scope: scopeAdminAll},
	"POST /attendance/{sessionId}/recalculate":    {who: anyUser, scope: scopeAdminAll, id: "session"},
	"GET /attendance/{sessionId}/distance-report": {who: anyUser, scope: scopeAdminAll, id: "session"},
	"POST /locations":                             {who: employeeOnly, scope: scopeAdminAll, body: matrixFix(nil)},
	"POST /locations/batch":                       {who: employeeOnly, scope: scopeAdminAll, body: map[string]any{"session_id": uuid.New(), "points": []any{matrixFix(nil)}}},
	"GET /locations/my-route":                     {who: employeeOnly, scope: scopeAdminAll, query: "?sessionId=" + uuid.NewString()},
	"POST /auth/login":                            {who: public, own: true},
	"POST /auth/v1/token":                         {who: public, own: true},
	"GET /auth/v1/user":                           {who: public, own: true},
	"POST /auth/v1/logout":                        {who: public, own: true},
	"GET /auth/v1/.well-known/jwks.json":          {who: public},
	"GET /auth/me":                                {who: anyUser},
	"GET /profile/me":                             {who: anyUser},
	"GET /dashboard/my-summary":                   {who: anyUser, scope: scopeAdminAll},
	"GET /admin/dashboard":                        {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/org-summary":                      {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/user-summary":                     {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/top-performers":                   {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/session-trend":                    {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/leaderboard":                      {who: adminOnly, scope: scopeAdminAll},
	"GET /leaderboard":                            {who: anyUser},
	"GET /internal/snapshot-health":               {who: adminOnly, scope: scopeAdminAll},
	"POST /expenses/receipt-upload-url":           {who: employeeOnly, scope: scopeAdminAll, body: map[string]any{"extension": "jpg"}},
	"POST /expenses":                              {who: anyUser, employee: true, scope: scopeAdminAll, body: map[string]any{"amount": 5, "description": "Matrix"}},
	"GET /expenses/my":                            {who: anyUser, scope: scopeWriteExpenses},
	"PUT /receipts/uploads/{id}":                  {who: public, own: true}, // the signed URL is the credential
	"GET /receipts/{id}":                          {who: anyUser, scope: scopeAdminAll, id: "other"},
	"GET /admin/expenses":                         {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/expenses/summary":                 {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/expenses/export":                  {who: adminOnly, scope: scopeAdminAll},
	"PATCH /admin/expenses/{id}":                  {who: adminOnly, scope: scopeWriteExpenses, id: "expense", body: map[string]any{"status": "REJECTED", "rejection_comment": "no receipt"}},
	"GET /admin/events":                           {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/queues":                           {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/system-health":                    {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/retry-intents":                    {who: adminOnly, scope: scopeAdminAll},
	"GET /internal/queues/status":                 {who: adminOnly, scope: scopeAdminAll},
	"GET /internal/metrics":                       {who: adminOnly, scope: scopeAdminAll},
	"GET /internal/ready-deep":                    {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/sessions":                         {who: adminOnly, scope: scopeReadSessions},
	"GET /admin/sessions/{id}/locations":          {who: adminOnly, scope: scopeReadSessions, id: "session"},
	"GET /admin/sessions/{id}/distance-report":    {who: adminOnly, scope: scopeReadSessions, id: "session"},
	"GET /admin/tracking-settings":                {who: adminOnly, scope: scopeAdminAll},
	"PATCH /admin/tracking-settings":              {who: adminOnly, scope: scopeAdminAll, body: map[string]any{"stay_min_seconds": 120}},
	"GET /admin/monitoring/map":                   {who: adminOnly, scope: scopeAdminAll},
	"POST /admin/force-checkout":                  {who: adminOnly, scope: scopeAdminAll, body: map[string]any{"employee_id": uuid.New()}},
	"POST /admin/queues/replay-distance-dlq":      {who: adminOnly, scope: scopeAdminAll, body: map[string]any{}},
	"POST /admin/start-monitoring":                {who: adminUser, scope: scopeAdminAll},
	"POST /admin/stop-monitoring":                 {who: adminUser, scope: scopeAdminAll},
	"GET /admin/monitoring-history":               {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/employees":                        {who: adminOnly, scope: scopeReadEmployees},
	"POST /admin/employees":                       {who: adminOnly, scope: scopeAdminAll, body: map[string]any{"name": "Matrix Hire"}},
	"GET /admin/employees/{id}":                   {who: adminOnly, scope: scopeReadEmployees, id: "employee"},
	"PATCH /admin/employees/{id}":                 {who: adminOnly, scope: scopeAdminAll, id: "employee", body: map[string]any{"name": "Renamed"}},
	"PATCH /admin/employees/{id}/status":          {who: adminOnly, scope: scopeAdminAll, id: "employee", body: map[string]any{"is_active": true}},
	"GET /admin/employees/{id}/profile":           {who: adminOnly, scope: scopeReadEmployees, id: "employee"},
	"GET /admin/search":                           {who: adminOnly, scope: scopeAdminAll},
	"GET /admin/webhook-dlq":                      {who: adminOnly, scope: scopeAdminAll},
	"POST /admin/webhook-dlq/{id}/retry":          {who: adminOnly, scope: scopeAdminAll, id: "delivery"},
	"GET /admin/api-keys":                         {who: adminUser, scope: scopeAdminAll},
	"POST /admin/api-keys":                        {who: adminUser, scope: scopeAdminAll, body: map[string]any{"name": "matrix", "scopes": []string{"read:employees"}}},
	"PATCH /admin/api-keys/{id}":                  {who: adminUser, scope: scopeAdminAll, id: "key", body: map[string]any{"name": "renamed"}},
	"DELETE /admin/api-keys/{id}":                 {who: adminUser, scope: scopeAdminAll, id: "key"},
	"GET /admin/audit-log":                        {who: adminOnly, scope: scopeAdminAll},
}

func init() {
	for _, prefix := range []string{"/admin/webhooks", "/webhooks"} {
		authzMatrix["GET "+prefix] = matrixRow{who: adminOnly, scope: scopeAdminAll}
		authzMatrix["POST "+prefix] = matrixRow{who: adminOnly, scope: scopeAdminAll, body: map[string]any{
			"url": "https://example.com/matrix", "events": []string{"session.checkin"}, "secret": "0123456789abcdef0123"}}
		authzMatrix["PATCH "+prefix+"/{id}"] = matrixRow{who: adminOnly, scope: scopeAdminAll, id: "webhook",
			body: map[string]any{"is_active": true}}
		authzMatrix["DELETE "+prefix+"/{id}"] = matrixRow{who: adminOnly, scope: scopeAdminAll, id: "webhook"}
		authzMatrix["POST "+prefix+"/{id}/test"] = matrixRow{who: adminOnly, scope: scopeAdminAll, id: "webhook"}
	}
	for _, logs := range []string{"/admin/webhook-deliveries", "/admin/webhooks/logs", "/webhooks/logs"} {
		authzMatrix["GET "+logs] = matrixRow{who: adminOnly, scope: scopeAdminAll}
		authzMatrix["POST "+logs+"/{id}/retry"] = matrixRow{who: adminOnly, scope: scopeAdminAll, id: "delivery"}
	}
}

// matrixFix is a well-formed GPS fix for a session that is nobody's.
func matrixFix(_ map[string]any) map[string]any {
	return map[string]any{"session_id": uuid.New(), "latitude": 52.5, "longitude": 13.4, "accuracy": 10,
		"recorded_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)}
}

// caller is one kind of caller: its headers.
type caller struct {
	name    string
	headers []string
}

func TestAuthorizationMatrix_EveryRouteAndEveryCaller(t *testing.T) {
	t.Parallel()
	h := setup(t)
	hub := events.NewHub(testfactory.Pool(t), 100, slog.New(slog.DiscardHandler))
	go hub.Run(t.Context())
	h.server.WithBackground(Background{Hub: hub})
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	adminTok := testfactory.AdminToken(t, org)
	emp := testfactory.NewEmployee(t, org, "Matrix")
	gone := testfactory.NewEmployee(t, org, "Deactivated")
	goneTok := testfactory.EmployeeToken(t, gone)
	expect(t, h.call("PATCH", "/admin/employees/"+gone.ID.String()+"/status", adminTok, map[string]any{"is_active": false}), http.StatusOK)

	// The organization's objects the paths name.
	session := testfactory.ClosedSession(t, emp, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	expense := fileExpense(t, h, testfactory.EmployeeToken(t, emp), 9.5, "Matrix")
	hook := h.call("POST", "/admin/webhooks", adminTok, map[string]any{"url": "https://example.com/m",
		"events": []string{"session.checkin"}, "secret": "0123456789abcdef0123"})
	expect(t, hook, http.StatusCreated)
	test := h.call("POST", "/admin/webhooks/"+hook.data()["id"].(string)+"/test", adminTok, nil)
	expect(t, test, http.StatusAccepted)
	_, keyID := newKey(t, h, adminTok, "read:employees")
	ids := map[string]string{"employee": emp.ID.String(), "session": session.String(), "expense": expense["id"].(string),
		"webhook": hook.data()["id"].(string), "delivery": test.data()["delivery_id"].(string), "key": keyID,
		"other": uuid.NewString()}

	keys := map[string]string{}
	for _, sc := range apiKeyScopes {
		keys[sc], _ = newKey(t, h, adminTok, sc)
	}
	revoked, revokedID := newKey(t, h, adminTok, "admin:all")
	expect(t, h.call("PATCH", "/admin/api-keys/"+revokedID, adminTok, map[string]any{"active": false}), http.StatusOK)

	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	denied := []caller{
		{"no auth", nil},
		{"bad token", bearer("not-a-token")},
		{"employee", bearer(testfactory.EmployeeToken(t, emp))},
		{"admin of another organization", bearer(testfactory.AdminToken(t, other))},
		{"revoked key", []string{"X-API-Key", revoked}},
		{"deactivated employee", bearer(goneTok)},
	}
	for _, sc := range apiKeyScopes {
		denied = append(denied, caller{"key " + sc, []string{"X-API-Key", keys[sc]}})
	}
	admin := caller{"admin", bearer(adminTok)}

	// Every route of the table has a row, and every row a route.
	var routes []string
	if err := chi.Walk(h.mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, rt := range routes {
		if _, ok := authzMatrix[rt]; !ok {
			t.Errorf("route %s has no row in the authorization matrix", rt)
		}
	}
	for rt := range authzMatrix {
		if !slices.Contains(routes, rt) {
			t.Errorf("matrix row %s names no route", rt)
		}
	}
	slices.Sort(routes)

	// Callers who are refused, or whose answer is decided before a handler changes anything, first; then
	// the callers who are let in (their calls change the objects).
	type check struct {
		route string
		c     caller
	}
	var allowed []check
	for _, rt := range routes {
		row := authzMatrix[rt]
		if row.own {
			continue
		}
		for _, c := range append(denied, admin) {
			want, ok := expected(row, c.name)
			if ok {
				allowed = append(allowed, check{rt, c})
				continue
			}
			if got := matrixCall(t, h, rt, row, ids, c); got != want {
				t.Errorf("%s as %s: %d, want %d", rt, c.name, got, want)
			}
		}
	}
	for _, a := range allowed {
		row := authzMatrix[a.route]
		got := matrixCall(t, h, a.route, row, ids, a.c)
		if got == http.StatusUnauthorized || got == http.StatusForbidden || got >= 500 {
			t.Errorf("%s as %s: %d, want to be let in", a.route, a.c.name, got)
		}
	}
}

// expected is the answer a caller must get on a route: a status, or ok when it must be let in.
func expected(row matrixRow, who string) (status int, ok bool) {
	if row.who == public {
		return 0, true
	}
	adminRoute := row.who == adminOnly || row.who == adminUser
	switch {
	case who == "no auth", who == "bad token", who == "revoked key":
		return http.StatusUnauthorized, false
	case who == "employee":
		if adminRoute {
			return http.StatusForbidden, false
		}
	case who == "deactivated employee":
		if adminRoute {
			return http.StatusForbidden, false // the role guard answers before the database is asked
		}
		return http.StatusUnauthorized, false
	case who == "admin", who == "admin of another organization":
		if row.who == employeeOnly || row.employee {
			return http.StatusForbidden, false
		}
		if who != "admin" && row.id != "" {
			return http.StatusNotFound, false
		}
	case strings.HasPrefix(who, "key "):
		held := strings.TrimPrefix(who, "key ")
		if row.scope != "" && held != row.scope && held != scopeAdminAll {
			return http.StatusForbidden, false
		}
		if row.who == employeeOnly || row.who == adminUser || row.employee {
			return http.StatusForbidden, false
		}
	}
	return 0, true
}

// matrixCall calls a route as c with the organization's objects in its path and answers the status; the
// answer is checked against openapi.yaml as h.call's are. A stream is closed once its headers arrive.
func matrixCall(t *testing.T, h *harness, route string, row matrixRow, ids map[string]string, c caller) int {
	t.Helper()
	method, path, _ := strings.Cut(route, " ")
	for _, p := range []string{"{id}", "{sessionId}"} {
		path = strings.ReplaceAll(path, p, ids[row.id])
	}
	path += row.query
	var body []byte
	if row.body != nil {
		body, _ = json.Marshal(row.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, h.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(c.headers); i += 2 {
		req.Header.Set(c.headers[i], c.headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := response{Status: res.StatusCode, Header: res.Header}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		if out.Raw, err = io.ReadAll(res.Body); err != nil {
			t.Fatal(err)
		}
		if mt == "application/json" {
			_ = json.Unmarshal(out.Raw, &out.Body)
		}
	}
	h.checkAgainstSpec(req, out)
	return res.StatusCode
}
