package analyst_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldtrack/fieldtrack/internal/analyst"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// connectAs logs in over TCP as login, as an analyst's SQL client would.
func connectAs(t *testing.T, login, password string) (*pgx.Conn, error) {
	t.Helper()
	u, err := url.Parse(testfactory.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(login, password)
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
		t.Fatalf("DATABASE_URL %s is not a TCP address on loopback", h)
	}
	return pgx.Connect(t.Context(), u.String())
}

func newLogin(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "analyst_" + hex.EncodeToString(b)
}

func TestAnalyst_ReadsOnlyItsOrganizationAndCannotWidenIt(t *testing.T) {
	t.Parallel()
	pool := testfactory.Pool(t)
	mine, theirs := testfactory.NewOrg(t), testfactory.NewOrg(t)
	now := time.Now()
	for _, org := range []testfactory.Org{mine, theirs} {
		e := testfactory.NewEmployee(t, org, "Counted")
		testfactory.ClosedSession(t, e, now.Add(-3*time.Hour), now.Add(-2*time.Hour))
		// Submitted when the session began: both count on the session's day, also in the first hours of a
		// day (the daily rows are by check-in and by submission).
		if _, err := pool.Exec(t.Context(), `INSERT INTO expenses (organization_id, employee_id, amount, description,
			submitted_at) VALUES ($1, $2, 9.5, 'Parking', $3)`, org.ID, e.ID, now.Add(-3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(t.Context(), `INSERT INTO webhooks (organization_id, url, secret, events)
			VALUES ($1, 'https://example.com/hook', 'whsec_0123456789abcdef', '{session.checkin}')`, org.ID); err != nil {
			t.Fatal(err)
		}
	}
	login, password := newLogin(t), "a long analyst password"
	if err := analyst.Grant(t.Context(), pool, mine.ID, login, password); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = analyst.Revoke(t.Context(), pool, login) })

	conn, err := connectAs(t, login, password)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	wantDenied := func(sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(t.Context(), sql, args...)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != "42501" {
			t.Errorf("%s: %v, want permission denied (42501)", sql, err)
		}
	}
	// Its organization's rows, through every view, and nobody else's.
	for view, want := range map[string]int{"employees": 1, "employee_last_state": 1, "employee_latest_sessions": 1,
		"employee_metrics_snapshot": 1, "employee_daily_metrics": 1, "pending_expenses": 1, "org_daily_metrics": 1,
		"org_dashboard_snapshot": 1, "active_users": 0} {
		if n := count(`SELECT count(*) FROM analytics.` + view); n != want {
			t.Errorf("analytics.%s: %d rows, want %d", view, n, want)
		}
		if n := count(`SELECT count(*) FROM analytics.`+view+` WHERE organization_id = $1`, theirs.ID); n != 0 {
			t.Errorf("analytics.%s shows another organization's rows", view)
		}
	}
	if n := count(`SELECT count(*) FROM employee_daily_metrics`); n != 1 { // the tables under them too
		t.Errorf("employee_daily_metrics: %d rows", n)
	}
	// Claims of the API do not widen it, nor does a role it is not.
	if _, err := conn.Exec(t.Context(), `SELECT set_config('app.org_id', $1, false), set_config('app.role', 'ADMIN', false)`,
		theirs.ID.String()); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM analytics.employee_daily_metrics`); n != 1 {
		t.Errorf("after set_config: %d rows", n)
	}
	for _, role := range []string{"fieldtrack_api", "fieldtrack_worker", "fieldtrack_issuer"} {
		if _, err := conn.Exec(t.Context(), `SET ROLE `+role); err == nil {
			t.Errorf("the analyst became %s", role)
		}
	}
	// It reads, nothing else, and no secret: its sessions are read-only, and without that, it has no grant.
	var readOnly string
	if err := conn.QueryRow(t.Context(), `SHOW default_transaction_read_only`).Scan(&readOnly); err != nil || readOnly != "on" {
		t.Errorf("default_transaction_read_only = %q (%v)", readOnly, err)
	}
	if _, err := conn.Exec(t.Context(), `SET default_transaction_read_only = off`); err != nil {
		t.Fatal(err)
	}
	wantDenied(`INSERT INTO employee_daily_metrics (organization_id, employee_id, date) SELECT organization_id, employee_id, '2001-01-01' FROM employee_last_state`)
	wantDenied(`UPDATE employee_metrics_snapshot SET total_expenses = 0`)
	wantDenied(`DELETE FROM pending_expenses`)
	for _, sql := range []string{`SELECT secret FROM webhooks`, `SELECT * FROM app.user_passwords`,
		`SELECT * FROM app.signing_keys`, `SELECT * FROM app.refresh_tokens`, `SELECT * FROM receipts`,
		`SELECT * FROM gps_locations`, `SELECT * FROM users`, `SELECT * FROM app.analyst_logins`,
		`SELECT user_id FROM public.employees`, `SELECT * FROM reconcile_snapshot_tables(true)`} {
		wantDenied(sql)
	}

	// Revoked, it cannot log in.
	if err := analyst.Revoke(t.Context(), pool, login); err != nil {
		t.Fatal(err)
	}
	if c, err := connectAs(t, login, password); err == nil {
		c.Close(t.Context())
		t.Fatal("a revoked analyst logged in")
	}
}

func TestAnalyst_GrantRefusesNamesAndBindingsItMustNotTake(t *testing.T) {
	t.Parallel()
	pool := testfactory.Pool(t)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	u, err := url.Parse(testfactory.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	// ours, not an identifier, the owner's own role (exists, not an analyst), empty
	for _, bad := range []string{"fieldtrack_api", "Robert'); DROP TABLE users;--", u.User.Username(), ""} {
		if err := analyst.Grant(t.Context(), pool, org.ID, bad, "a long analyst password"); err == nil {
			t.Errorf("granted %q", bad)
		}
	}
	login := newLogin(t)
	if err := analyst.Grant(t.Context(), pool, org.ID, login, "short"); err == nil || !strings.Contains(err.Error(), "12") {
		t.Errorf("a short password: %v", err)
	}
	if err := analyst.Grant(t.Context(), pool, org.ID, login, "a long analyst password"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = analyst.Revoke(t.Context(), pool, login) })
	if err := analyst.Grant(t.Context(), pool, other.ID, login, "a long analyst password"); err == nil {
		t.Error("one login bound to two organizations")
	}
	// Granting again changes the password (the test cluster asks analysts for theirs).
	if err := analyst.Grant(t.Context(), pool, org.ID, login, "another long password"); err != nil {
		t.Fatal(err)
	}
	if c, err := connectAs(t, login, "a long analyst password"); err == nil {
		c.Close(t.Context())
		t.Fatal("the old password still logs in")
	}
	c, err := connectAs(t, login, "another long password")
	if err != nil {
		t.Fatal(err)
	}
	c.Close(t.Context())
}
