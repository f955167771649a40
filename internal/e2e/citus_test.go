//go:build citus

// The tests of a Citus cluster (issue 15): `make test-citus` runs them against the coordinator of a
// coordinator and two workers (scripts/citus.sh); `make test` does not build them.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// The tables every organization's rows live in, distributed by organization_id in one colocation group,
// and the reference tables copied to every node (sql/000028, 000031).
var (
	distributedTables = []string{"employees", "tracking_settings", "api_keys", "admin_audit_log", "admin_sessions",
		"webhooks", "webhook_events", "attendance_sessions", "expenses", "receipts", "gps_locations",
		"session_summaries", "employee_daily_metrics", "employee_last_state", "employee_latest_sessions",
		"employee_metrics_snapshot", "pending_expenses", "webhook_deliveries", "webhook_delivery_attempts",
		"app.employee_code_counters", "app.user_passwords", "app.auth_sessions"}
	referenceTables = []string{"organizations", "users", "app.refresh_tokens", "app.analyst_logins"}
)

func TestCitus_EveryTenantTableIsDistributedByOrganizationAndColocated(t *testing.T) {
	ctx := context.Background()
	p := testfactory.Pool(t)
	var group int64
	for _, table := range distributedTables {
		var method, column string
		var colocation int64
		err := p.QueryRow(ctx, `SELECT d.partmethod::text, coalesce(column_to_column_name(d.logicalrelid, d.partkey), ''),
		                               d.colocationid
		                          FROM pg_dist_partition d WHERE d.logicalrelid = $1::regclass`, table).
			Scan(&method, &column, &colocation)
		if err != nil {
			t.Fatalf("%s: %v (not distributed?)", table, err)
		}
		if method != "h" || column != "organization_id" {
			t.Errorf("%s: distributed by %s on %q, want hash on organization_id", table, method, column)
		}
		if group == 0 {
			group = colocation
		} else if colocation != group {
			t.Errorf("%s: colocation group %d, want %d (that of %s)", table, colocation, group, distributedTables[0])
		}
	}
	for _, table := range referenceTables {
		var method string
		if err := p.QueryRow(ctx, `SELECT partmethod::text FROM pg_dist_partition WHERE logicalrelid = $1::regclass`,
			table).Scan(&method); err != nil || method != "n" {
			t.Errorf("%s: partmethod %q (%v), want a reference table", table, method, err)
		}
	}
	// Every table of the public schema with an organization_id is one of the two kinds.
	rows, err := p.Query(ctx, `SELECT c.oid::regclass::text FROM pg_class c
	                            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id'
	                           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
	                             AND NOT EXISTS (SELECT FROM pg_dist_partition d WHERE d.logicalrelid = c.oid)`)
	if err != nil {
		t.Fatal(err)
	}
	local, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(local) > 0 {
		t.Errorf("tenant tables left on the coordinator alone: %v", local)
	}
}

// A query that names another organization is routed to that organization's shard, on a worker, and the
// worker's forced row-level security, fed the caller's claims, answers nothing; the shard itself, read on
// its worker as the API role, shows an organization's rows only under that organization's claims.
func TestCitus_ClaimsReachTheWorkersAndAnotherOrganizationsShardShowsNothing(t *testing.T) {
	ctx := context.Background()
	p := testfactory.Pool(t)
	mine, theirs := testfactory.NewOrg(t), testfactory.NewOrg(t)
	testfactory.NewEmployee(t, mine, "Mine")
	testfactory.NewEmployee(t, theirs, "Theirs")

	count := func(claims db.Claims, org uuid.UUID) int {
		t.Helper()
		n, err := db.Do(ctx, p, claims, db.TxOptions{ReadOnly: true}, func(tx db.DBTX) (int, error) {
			var n int
			err := tx.QueryRow(ctx, `SELECT count(*) FROM employees WHERE organization_id = $1`, org).Scan(&n)
			return n, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(testfactory.AdminClaims(theirs), theirs.ID); n != 1 {
		t.Fatalf("their admin sees %d of their employees, want 1", n)
	}
	if n := count(testfactory.AdminClaims(mine), theirs.ID); n != 0 {
		t.Errorf("my admin sees %d of their employees, want 0", n)
	}
	if n := count(db.Claims{}, theirs.ID); n != 0 {
		t.Errorf("without claims the API role sees %d of their employees, want 0", n)
	}

	// The column grants hold: the coordinator checks the columns a request names (the shards, which get
	// every column with the defaults filled in, grant the whole row; sql/000028).
	emp := testfactory.NewEmployee(t, mine, "Grants")
	err := db.InTx(ctx, p, testfactory.EmployeeClaims(emp), db.TxOptions{}, func(tx db.DBTX) error {
		_, err := tx.Exec(ctx, `INSERT INTO attendance_sessions (organization_id, employee_id, checkin_at)
		                        VALUES ($1, $2, now() - interval '1 day')`, mine.ID, emp.ID)
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("an employee's insert of its own check-in time: %v, want 42501", err)
	}

	// The query is a router query to a worker: the coordinator holds no tenant rows.
	var shard int64
	var host string
	var port int
	if err := p.QueryRow(ctx, `SELECT s.shardid, s.nodename, s.nodeport FROM citus_shards s
	                            WHERE s.table_name = 'employees'::regclass
	                              AND s.shardid = get_shard_id_for_distribution_column('employees', $1::uuid)`,
		theirs.ID).Scan(&shard, &host, &port); err != nil {
		t.Fatal(err)
	}
	var coordinatorPort int
	if err := p.QueryRow(ctx, `SELECT nodeport FROM pg_dist_node WHERE groupid = 0`).Scan(&coordinatorPort); err != nil {
		t.Fatal(err)
	}
	if port == coordinatorPort {
		t.Fatalf("their employees' shard %d is on the coordinator; want a worker", shard)
	}

	// On the worker, the shard table itself: forced RLS keyed on the claims, as on the coordinator.
	u, err := url.Parse(testfactory.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = host + ":" + strconv.Itoa(port)
	worker, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close(ctx)
	onShard := func(org uuid.UUID) int {
		t.Helper()
		tx, err := worker.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT set_config('role', 'fieldtrack_api', true),
		                                  set_config('app.org_id', $1, true), set_config('app.role', 'ADMIN', true)`,
			org.String()); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM public.employees_%d WHERE organization_id = $1`, shard),
			theirs.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := onShard(theirs.ID); n != 1 {
		t.Errorf("on shard %d under their claims: %d rows, want 1", shard, n)
	}
	if n := onShard(mine.ID); n != 0 {
		t.Errorf("on shard %d under my claims: %d of their rows, want 0", shard, n)
	}
}

// An employee's day through the API on the cluster: check-in, a batch of fixes, check-out, the distance,
// an expense and its review, and the admin lists of each organization, which never show the other's.
func TestCitus_AnEmployeesDayThroughTheAPIStaysInItsOrganization(t *testing.T) {
	s := startServer(t, nil)
	mine, theirs := testfactory.NewOrg(t), testfactory.NewOrg(t)
	me := testfactory.NewEmployee(t, mine, "Walker")
	other := testfactory.NewEmployee(t, theirs, "Other")
	tok, admin, theirAdmin := testfactory.EmployeeToken(t, me), testfactory.AdminToken(t, mine), testfactory.AdminToken(t, theirs)

	// Check-in and check-out through the API (a second employee), and a session opened ten minutes ago
	// for the fixes (which must not be ahead of the clock).
	brief := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, mine, "Brief"))
	jsonCall(t, "POST", s.base+"/attendance/check-in", brief, nil, http.StatusCreated)
	jsonCall(t, "POST", s.base+"/attendance/check-out", brief, nil, http.StatusOK)
	start := time.Now().Add(-9 * time.Minute)
	session := testfactory.OpenSession(t, me, start.Add(-time.Minute)).String()
	// 100 fixes 10 m apart due north: 0.990 km.
	points := make([]map[string]any, 100)
	for i := range points {
		points[i] = map[string]any{"latitude": 52.5 + float64(i)*10/111320.0, "longitude": 13.4, "accuracy": 5,
			"recorded_at": start.Add(time.Duration(i) * time.Second * 2).UTC().Format(time.RFC3339Nano)}
	}
	batch := jsonCall(t, "POST", s.base+"/locations/batch", tok, map[string]any{"session_id": session, "points": points},
		http.StatusCreated)
	if batch["inserted"] != float64(100) {
		t.Fatalf("batch inserted %v, want 100", batch["inserted"])
	}
	again := jsonCall(t, "POST", s.base+"/locations/batch", tok, map[string]any{"session_id": session, "points": points[:10]},
		http.StatusCreated)
	if again["inserted"] != float64(0) {
		t.Errorf("the same fixes again inserted %v, want 0", again["inserted"])
	}
	out := jsonCall(t, "POST", s.base+"/attendance/check-out", tok, nil, http.StatusOK)["data"].(map[string]any)
	if km, _ := out["total_distance_km"].(float64); math.Abs(km-0.99) > 0.01 {
		t.Errorf("distance %v km, want 0.990 (%v)", out["total_distance_km"], out)
	}

	expense := jsonCall(t, "POST", s.base+"/expenses", tok, map[string]any{"amount": 12.5, "description": "Parking"},
		http.StatusCreated)["data"].(map[string]any)["id"].(string)
	jsonCall(t, "PATCH", s.base+"/admin/expenses/"+expense, theirAdmin, map[string]any{"status": "APPROVED"}, http.StatusNotFound)
	reviewed := jsonCall(t, "PATCH", s.base+"/admin/expenses/"+expense, admin, map[string]any{"status": "APPROVED"},
		http.StatusOK)["data"].(map[string]any)
	if reviewed["status"] != "APPROVED" {
		t.Errorf("reviewed expense %v", reviewed)
	}

	// Each admin's lists hold their own organization's rows only; another's ids are 404.
	for _, c := range []struct {
		admin, employee string
		org             testfactory.Org
	}{{admin, me.ID.String(), mine}, {theirAdmin, other.ID.String(), theirs}} {
		list := jsonCall(t, "GET", s.base+"/admin/employees", c.admin, nil, http.StatusOK)["data"].([]any)
		if !onlyEmployee(list, c.employee, c.org == mine) {
			t.Errorf("org %s lists employees %v, want only %s", c.org.ID, list, c.employee)
		}
	}
	jsonCall(t, "GET", s.base+"/admin/employees/"+me.ID.String(), theirAdmin, nil, http.StatusNotFound)
	jsonCall(t, "GET", s.base+"/admin/sessions/"+session+"/locations", theirAdmin, nil, http.StatusNotFound)
	sessions := jsonCall(t, "GET", s.base+"/admin/sessions", theirAdmin, nil, http.StatusOK)["data"].([]any)
	if len(sessions) != 0 {
		t.Errorf("their admin lists %d sessions, want 0", len(sessions))
	}
	route := jsonCall(t, "GET", s.base+"/admin/sessions/"+session+"/locations", admin, nil, http.StatusOK)["data"].([]any)
	if len(route) != 100 {
		t.Errorf("my admin reads %d fixes of the session, want 100", len(route))
	}
}

// Built-in identity on the cluster: a password sign-in, a refresh, a sign-out elsewhere, and a deactivation,
// which ends the employee's login sessions at once (their sessions are rows of the organization's node,
// the refresh tokens a reference table: sql/000031).
func TestCitus_SignInRefreshSignOutAndDeactivationEndTheSessions(t *testing.T) {
	s := startServer(t, nil)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Signer")
	login := testfactory.GivePassword(t, org.ID, emp.UserID)
	signIn := func() map[string]any {
		return jsonCall(t, "POST", s.base+"/auth/v1/token?grant_type=password", "",
			map[string]any{"email": login.Email, "password": login.Password}, http.StatusOK)
	}
	first, second := signIn(), signIn()
	jsonCall(t, "GET", s.base+"/attendance/my-sessions", first["access_token"].(string), nil, http.StatusOK)
	renewed := jsonCall(t, "POST", s.base+"/auth/v1/token?grant_type=refresh_token", "",
		map[string]any{"refresh_token": first["refresh_token"]}, http.StatusOK)
	fresh := renewed["access_token"].(string)
	jsonCall(t, "GET", s.base+"/attendance/my-sessions", fresh, nil, http.StatusOK)

	// Signing out the others ends the second session, not this one.
	jsonCall(t, "POST", s.base+"/auth/v1/logout?scope=others", fresh, nil, http.StatusNoContent)
	jsonCall(t, "GET", s.base+"/attendance/my-sessions", second["access_token"].(string), nil, http.StatusUnauthorized)
	jsonCall(t, "GET", s.base+"/attendance/my-sessions", fresh, nil, http.StatusOK)

	// A deactivation ends the rest at once, and its refresh token with it.
	jsonCall(t, "PATCH", s.base+"/admin/employees/"+emp.ID.String()+"/status", testfactory.AdminToken(t, org),
		map[string]any{"is_active": false}, http.StatusOK)
	jsonCall(t, "GET", s.base+"/attendance/my-sessions", fresh, nil, http.StatusUnauthorized)
	jsonCall(t, "POST", s.base+"/auth/v1/token?grant_type=refresh_token", "",
		map[string]any{"refresh_token": renewed["refresh_token"]}, http.StatusBadRequest)

	// Disabling an account (users is a reference table: its trigger acts from the coordinator's copy)
	// ends its sessions too.
	adminLogin := testfactory.GivePassword(t, org.ID, org.AdminUserID)
	adminSession := jsonCall(t, "POST", s.base+"/auth/v1/token?grant_type=password", "",
		map[string]any{"email": adminLogin.Email, "password": adminLogin.Password}, http.StatusOK)
	jsonCall(t, "GET", s.base+"/admin/employees", adminSession["access_token"].(string), nil, http.StatusOK)
	if _, err := testfactory.Pool(t).Exec(context.Background(),
		`UPDATE users SET disabled_at = now() WHERE organization_id = $1 AND id = $2`, org.ID, org.AdminUserID); err != nil {
		t.Fatal(err)
	}
	var open int
	if err := testfactory.Pool(t).QueryRow(context.Background(), `SELECT count(*) FROM app.auth_sessions
	        WHERE organization_id = $1 AND user_id = $2 AND revoked_at IS NULL`, org.ID, org.AdminUserID).Scan(&open); err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Errorf("a disabled account keeps %d open login sessions", open)
	}
	jsonCall(t, "GET", s.base+"/admin/employees", adminSession["access_token"].(string), nil, http.StatusUnauthorized)
}

// onlyEmployee reports whether list holds employee (and, in my organization, the second one, Brief) and no
// one else: no employee of the other organization.
func onlyEmployee(list []any, employee string, withBrief bool) bool {
	want := 1
	if withBrief {
		want = 2
	}
	found := false
	for _, e := range list {
		found = found || e.(map[string]any)["id"] == employee
	}
	return found && len(list) == want
}

// jsonCall sends body (when not nil) as JSON and fails unless the answer has status want.
func jsonCall(t *testing.T, method, u, token string, body any, want int) map[string]any {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("apikey", "anon-key") // as supabase-js sends it
	res, err := quick.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, u, res.StatusCode, want, raw)
	}
	var out map[string]any
	if len(raw) == 0 {
		return out
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %q: %v", method, u, raw, err)
	}
	return out
}
