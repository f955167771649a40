package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// analyticsOrg is an organization with known figures: today (UTC, its time zone) e1 drove 2.25 km and
// yesterday 5.5 km; e2 10 km today; e3 is checked in now; e1 filed 100 (pending), e2 50 (approved) and
// 20 (rejected).
type analyticsOrg struct {
	org        testfactory.Org
	e1, e2, e3 testfactory.Employee
	admin      string
}

func newAnalyticsOrg(t *testing.T, h *harness) analyticsOrg {
	t.Helper()
	a := analyticsOrg{org: testfactory.NewOrg(t)}
	a.admin = testfactory.AdminToken(t, a.org)
	a.e1 = testfactory.NewEmployee(t, a.org, "Asha One")
	a.e2 = testfactory.NewEmployee(t, a.org, "Bala Two")
	a.e3 = testfactory.NewEmployee(t, a.org, "Chen Three")
	now := time.Now().UTC()
	midnight := now.Truncate(24 * time.Hour)
	todayIn := midnight.Add(now.Sub(midnight) / 3) // always today, before now
	todayOut := todayIn.Add(now.Sub(midnight) / 6)
	closed := func(e testfactory.Employee, in, out time.Time, km float64) {
		id := testfactory.ClosedSession(t, e, in, out)
		if _, err := testfactory.Pool(t).Exec(t.Context(), `UPDATE attendance_sessions SET total_distance_km = $3
			WHERE organization_id = $1 AND id = $2`, e.OrgID, id, km); err != nil {
			t.Fatal(err)
		}
	}
	closed(a.e1, midnight.Add(-14*time.Hour), midnight.Add(-12*time.Hour), 5.5)
	closed(a.e1, todayIn, todayOut, 2.25)
	closed(a.e2, todayIn, todayOut, 10)
	expect(t, h.call("POST", "/attendance/check-in", testfactory.EmployeeToken(t, a.e3), map[string]any{}), http.StatusCreated)
	fileExpense(t, h, testfactory.EmployeeToken(t, a.e1), 100, "Pending one")
	approved := fileExpense(t, h, testfactory.EmployeeToken(t, a.e2), 50, "Approved one")["id"].(string)
	rejected := fileExpense(t, h, testfactory.EmployeeToken(t, a.e2), 20, "Rejected one")["id"].(string)
	expect(t, h.call("PATCH", "/admin/expenses/"+approved, a.admin, map[string]any{"status": "APPROVED"}), http.StatusOK)
	expect(t, h.call("PATCH", "/admin/expenses/"+rejected, a.admin, map[string]any{"status": "REJECTED",
		"rejection_comment": "No receipt"}), http.StatusOK)
	return a
}

func TestAnalytics_DashboardFiguresTrendAndLeaderboard(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newAnalyticsOrg(t, h)
	r := h.call("GET", "/admin/dashboard", a.admin, nil)
	expect(t, r, http.StatusOK)
	d := r.data()
	for k, want := range map[string]any{"activeEmployeeCount": 1.0, "recentEmployeeCount": 2.0, "inactiveEmployeeCount": 0.0,
		"activeEmployeesToday": 3.0, "todaySessionCount": 3.0, "todayDistanceKm": 12.25, "pendingExpenseCount": 1.0,
		"pendingExpenseAmount": 100.0} {
		if d[k] != want {
			t.Errorf("%s = %v, want %v (%s)", k, d[k], want, r.Raw)
		}
	}
	trend, _ := d["sessionTrend"].([]any)
	board, _ := d["leaderboard"].([]any)
	if len(trend) != 2 || len(board) != 3 { // e3's open session counts as one of today's sessions
		t.Fatalf("trend %v, leaderboard %v", trend, board)
	}
	first := board[0].(map[string]any)
	if first["employeeId"] != a.e2.ID.String() || first["rank"] != 1.0 || first["distance"] != 10.0 || first["expenses"] != 70.0 {
		t.Fatalf("leaderboard's first %v", first)
	}
	today := trend[1].(map[string]any)
	if today["date"] != time.Now().UTC().Format(time.DateOnly) || today["sessions"] != 3.0 || today["distance"] != 12.25 {
		t.Fatalf("today's trend %v", today)
	}

	// Another organization sees none of it.
	other := testfactory.NewOrg(t)
	d = h.call("GET", "/admin/dashboard", testfactory.AdminToken(t, other), nil).data()
	if d["todaySessionCount"] != 0.0 || d["pendingExpenseCount"] != 0.0 || len(d["leaderboard"].([]any)) != 0 {
		t.Fatalf("another organization's dashboard %v", d)
	}
}

func TestAnalytics_LeaderboardsRankByMetricForEveryCallerOfTheOrganization(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newAnalyticsOrg(t, h)
	ids := func(r response) []string {
		var out []string
		for _, e := range r.list() {
			out = append(out, fmt.Sprint(e["employeeId"], ":", e["distance"], ":", e["sessions"], ":", e["expenses"]))
		}
		return out
	}
	e1, e2, e3 := a.e1.ID.String()+":7.75:2:100", a.e2.ID.String()+":10:1:70", a.e3.ID.String()+":0:1:<nil>"
	tied := []string{e2, e3} // one session each: by employee id
	if a.e3.ID.String() < a.e2.ID.String() {
		tied = []string{e3, e2}
	}
	for _, c := range []struct {
		path string
		want string
	}{
		{"/admin/leaderboard", fmt.Sprint([]string{e2, e1, e3})},
		{"/admin/leaderboard?metric=sessions", fmt.Sprint(append([]string{e1}, tied...))},
		{"/admin/leaderboard?metric=expenses&limit=2", fmt.Sprint([]string{e1, e2})},
		// An employee sees its colleagues on the public leaderboard (it cannot read their rows otherwise).
		{"/leaderboard?metric=distance", fmt.Sprint([]string{e2, e1, e3})},
	} {
		tok := a.admin
		if c.path[1] == 'l' {
			tok = testfactory.EmployeeToken(t, a.e3)
		}
		r := h.call("GET", c.path, tok, nil)
		expect(t, r, http.StatusOK)
		if got := fmt.Sprint(ids(r)); got != c.want {
			t.Errorf("%s: %s, want %s", c.path, got, c.want)
		}
	}
	// A range of yesterday only.
	y := time.Now().UTC().Truncate(24 * time.Hour).Add(-time.Hour)
	r := h.call("GET", "/admin/top-performers?metric=distance&from="+url.QueryEscape(y.Add(-time.Hour).Format(time.RFC3339))+
		"&to="+url.QueryEscape(y.Format(time.RFC3339)), a.admin, nil)
	expect(t, r, http.StatusOK)
	if l := r.list(); len(l) != 1 || l[0]["employeeId"] != a.e1.ID.String() || l[0]["totalDistanceKm"] != 5.5 || l[0]["employeeName"] != "Asha One" {
		t.Fatalf("yesterday's top performers %s", r.Raw)
	}
	// The public leaderboard of another organization's employee is its own organization's.
	stranger := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Stranger")
	if l := h.call("GET", "/leaderboard", testfactory.EmployeeToken(t, stranger), nil).list(); len(l) != 0 {
		t.Fatalf("a stranger's leaderboard %v", l)
	}
	// The original's messages for bad input.
	expectError(t, h.call("GET", "/admin/leaderboard?metric=speed", a.admin, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("GET", "/admin/top-performers?metric=expenses", a.admin, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("GET", "/admin/leaderboard?limit=51", a.admin, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("GET", "/admin/session-trend?from=2026-01-01", a.admin, nil), http.StatusBadRequest, "VALIDATION_ERROR",
		"from must be a valid ISO-8601 date")
	expectError(t, h.call("GET", "/admin/org-summary?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", a.admin, nil),
		http.StatusBadRequest, "VALIDATION_ERROR", "'from' date must not be later than 'to' date")
	expectError(t, h.call("GET", "/admin/leaderboard", testfactory.EmployeeToken(t, a.e1), nil), http.StatusForbidden, "FORBIDDEN", "")
}

func TestAnalytics_OrgAndUserSummaries(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newAnalyticsOrg(t, h)
	r := h.call("GET", "/admin/org-summary", a.admin, nil)
	expect(t, r, http.StatusOK)
	for k, want := range map[string]any{"totalSessions": 4.0, "totalDistanceKm": 17.75, "totalExpenses": 3.0,
		"approvedExpenseAmount": 50.0, "rejectedExpenseAmount": 20.0, "activeEmployeesCount": 1.0} {
		if r.data()[k] != want {
			t.Errorf("org-summary %s = %v, want %v", k, r.data()[k], want)
		}
	}
	r = h.call("GET", "/admin/user-summary?userId="+a.e1.UserID.String(), a.admin, nil)
	expect(t, r, http.StatusOK)
	for k, want := range map[string]any{"sessionsCount": 2.0, "totalDistanceKm": 7.75, "averageDistancePerSession": 3.875,
		"totalExpenses": 1.0, "approvedExpenseAmount": 0.0} {
		if r.data()[k] != want {
			t.Errorf("user-summary %s = %v, want %v", k, r.data()[k], want)
		}
	}
	// The admin itself (no employee), an unknown user and another organization's user: zeros.
	stranger := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Stranger")
	testfactory.ClosedSession(t, stranger, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	for _, q := range []string{"", "?userId=" + uuid.NewString(), "?userId=" + stranger.UserID.String()} {
		r := h.call("GET", "/admin/user-summary"+q, a.admin, nil)
		expect(t, r, http.StatusOK)
		if r.data()["sessionsCount"] != 0.0 {
			t.Fatalf("user-summary%s: %s", q, r.Raw)
		}
	}
}

// The health check reports what the latest reconciliation found: a corrupted row makes it 503 once a
// run found (and repaired) it, and the next run, finding nothing, makes it healthy again.
func TestAnalytics_SnapshotHealthReportsWhatReconciliationFound(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newAnalyticsOrg(t, h)
	reconcile := func() {
		t.Helper()
		if _, err := testfactory.Pool(t).Exec(t.Context(), `CALL app.reconcile_all($1)`, a.org.ID); err != nil {
			t.Fatal(err)
		}
	}
	reconcile()
	r := h.call("GET", "/internal/snapshot-health", a.admin, nil)
	expect(t, r, http.StatusOK)
	if r.data()["status"] != "healthy" || r.data()["reconciledAt"] == nil {
		t.Fatalf("health %s", r.Raw)
	}
	if _, err := testfactory.Pool(t).Exec(t.Context(), `UPDATE employee_daily_metrics SET sessions = 9 WHERE organization_id = $1`,
		a.org.ID); err != nil {
		t.Fatal(err)
	}
	reconcile()
	r = h.call("GET", "/internal/snapshot-health", a.admin, nil)
	expect(t, r, http.StatusServiceUnavailable)
	tables := r.data()["tables"].(map[string]any)
	if daily := tables["employee_daily_metrics"].(map[string]any); daily["stale"] != true || daily["rowsBehind"] != 4.0 {
		t.Fatalf("daily metrics %v", daily)
	}
	if tables["employee_last_state"].(map[string]any)["stale"] != false || tables["org_dashboard_snapshot"].(map[string]any)["stale"] != true {
		t.Fatalf("tables %v", tables)
	}
	// Another organization is not affected; the next run finds nothing.
	other := testfactory.NewOrg(t)
	if _, err := testfactory.Pool(t).Exec(t.Context(), `CALL app.reconcile_all($1)`, other.ID); err != nil {
		t.Fatal(err)
	}
	expect(t, h.call("GET", "/internal/snapshot-health", testfactory.AdminToken(t, other), nil), http.StatusOK)
	reconcile()
	expect(t, h.call("GET", "/internal/snapshot-health", a.admin, nil), http.StatusOK)
}

// An open session shows its distance so far once the minute's measure ran, by the function of the final
// distance; the check-out then stores the final one.
func TestAnalytics_OpenSessionsShowTheirDistanceSoFar(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	e := testfactory.NewEmployee(t, org, "Driver")
	tok := testfactory.EmployeeToken(t, e)
	start := time.Now().Add(-20 * time.Minute).UTC().Truncate(time.Second)
	session := testfactory.OpenSession(t, e, start).String()
	var points []map[string]any
	for i := range 11 { // 11 fixes 100 m apart northwards, a minute apart
		points = append(points, map[string]any{"latitude": 12.9 + float64(i)*0.0009, "longitude": 77.6, "accuracy": 5,
			"recorded_at": start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)})
	}
	expect(t, h.call("POST", "/locations/batch", tok, map[string]any{"session_id": session, "points": points}), http.StatusCreated)
	if _, err := testfactory.Pool(t).Exec(t.Context(), `CALL app.measure_open_sessions()`); err != nil {
		t.Fatal(err)
	}
	l := h.call("GET", "/attendance/my-sessions", tok, nil).list()
	if len(l) != 1 || l[0]["checkout_at"] != nil {
		t.Fatalf("sessions %v", l)
	}
	km, _ := l[0]["total_distance_km"].(float64)
	if km < 0.95 || km > 1.05 {
		t.Fatalf("distance so far %v, want about 1 km", l[0]["total_distance_km"])
	}
	var latest float64
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT total_distance_km FROM employee_latest_sessions
		WHERE organization_id = $1 AND employee_id = $2`, org.ID, e.ID).Scan(&latest); err != nil || latest != km {
		t.Fatalf("the latest session's snapshot: %v (%v), want %v", latest, err, km)
	}
	r := h.call("POST", "/attendance/check-out", tok, map[string]any{})
	expect(t, r, http.StatusOK)
	if r.data()["total_distance_km"] != km {
		t.Fatalf("the final distance %v, the distance so far %v", r.data()["total_distance_km"], km)
	}
}
