package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func TestCheckIn_OpensSessionAndCheckOutClosesItWithDuration(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Asha")
	tok := testfactory.EmployeeToken(t, emp)

	in := h.call("POST", "/attendance/check-in", tok, nil)
	expect(t, in, http.StatusCreated)
	s := in.data()
	if s["employee_id"] != emp.ID.String() || s["organization_id"] != org.ID.String() || s["checkout_at"] != nil {
		t.Fatalf("check-in returned %s", in.Raw)
	}

	// The dashboard posts {} with a JSON content type; that must work too.
	out := h.call("POST", "/attendance/check-out", tok, "{}")
	expect(t, out, http.StatusOK)
	c := out.data()
	if c["id"] != s["id"] || c["checkout_at"] == nil {
		t.Fatalf("check-out returned %s", out.Raw)
	}
	if d, ok := c["total_duration_seconds"].(float64); !ok || d < 0 || d > 60 {
		t.Fatalf("duration %v, want seconds between check-in and check-out", c["total_duration_seconds"])
	}
}

func TestCheckIn_SecondActiveSessionIsRejectedWithOriginalMessage(t *testing.T) {
	t.Parallel()
	h := setup(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Ben")
	tok := testfactory.EmployeeToken(t, emp)
	expect(t, h.call("POST", "/attendance/check-in", tok, nil), http.StatusCreated)
	expectError(t, h.call("POST", "/attendance/check-in", tok, nil), http.StatusBadRequest, "VALIDATION_ERROR",
		"Cannot check in: you already have an active session. Check out first.")
}

func TestCheckIn_TwentyConcurrentGiveExactlyOneSession(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Racer")
	tok := testfactory.EmployeeToken(t, emp)

	statuses := make([]int, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = h.call("POST", "/attendance/check-in", tok, nil).Status
		}()
	}
	close(start)
	wg.Wait()
	created, rejected := 0, 0
	for _, s := range statuses {
		switch {
		case s == http.StatusCreated:
			created++
		case s >= 400 && s < 500:
			rejected++
		}
	}
	if created != 1 || rejected != 19 {
		t.Fatalf("statuses %v: want one 201 and nineteen 4xx", statuses)
	}
	list := h.call("GET", "/attendance/my-sessions?status=active", tok, nil)
	expect(t, list, http.StatusOK)
	if list.total() != 1 {
		t.Fatalf("%d active sessions stored, want 1", list.total())
	}
}

func TestCheckOut_WithoutSessionGivesOriginal400(t *testing.T) {
	t.Parallel()
	h := setup(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Idle")
	expectError(t, h.call("POST", "/attendance/check-out", testfactory.EmployeeToken(t, emp), nil),
		http.StatusBadRequest, "VALIDATION_ERROR", "Cannot check out: no active session found. Check in first.")
}

func TestCheckIn_AdminIsForbidden(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	expectError(t, h.call("POST", "/attendance/check-in", testfactory.AdminToken(t, org), nil),
		http.StatusForbidden, "FORBIDDEN", "This action requires EMPLOYEE role")
	expectError(t, h.call("POST", "/attendance/check-out", testfactory.AdminToken(t, org), nil),
		http.StatusForbidden, "FORBIDDEN", "This action requires EMPLOYEE role")
}

func TestCheckIn_ADeactivatedEmployeesTokenStopsWorking(t *testing.T) {
	t.Parallel()
	h := setup(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Gone")
	if _, err := testfactory.Pool(t).Exec(t.Context(), `UPDATE employees SET is_active = false WHERE id = $1`, emp.ID); err != nil {
		t.Fatal(err)
	}
	r := h.call("POST", "/attendance/check-in", testfactory.EmployeeToken(t, emp), nil)
	expectError(t, r, http.StatusUnauthorized, "EMPLOYEE_DEACTIVATED", "This employee is deactivated.")
}

func TestMySessions_PagesAndFiltersByStatus(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Paged")
	other := testfactory.NewEmployee(t, org, "Other")
	now := time.Now()
	old := testfactory.ClosedSession(t, emp, now.Add(-72*time.Hour), now.Add(-64*time.Hour))
	recent := testfactory.ClosedSession(t, emp, now.Add(-10*time.Hour), now.Add(-2*time.Hour))
	active := testfactory.OpenSession(t, emp, now.Add(-time.Hour))
	testfactory.ClosedSession(t, other, now.Add(-5*time.Hour), now.Add(-4*time.Hour))
	tok := testfactory.EmployeeToken(t, emp)

	all := h.call("GET", "/attendance/my-sessions?page=1&limit=2&status=all", tok, nil)
	expect(t, all, http.StatusOK)
	if all.total() != 3 || len(all.list()) != 2 {
		t.Fatalf("page 1: %s", all.Raw)
	}
	if all.list()[0]["id"] != active.String() || all.list()[1]["id"] != recent.String() {
		t.Fatalf("not newest first: %s", all.Raw)
	}
	p2 := h.call("GET", "/attendance/my-sessions?page=2&limit=2", tok, nil)
	if len(p2.list()) != 1 || p2.list()[0]["id"] != old.String() {
		t.Fatalf("page 2: %s", p2.Raw)
	}
	if pg := p2.Body["pagination"].(map[string]any); pg["totalPages"] != 2.0 || pg["page"] != 2.0 || pg["limit"] != 2.0 {
		t.Fatalf("pagination %v", pg)
	}
	for status, want := range map[string]string{"active": active.String(), "recent": recent.String(), "inactive": old.String()} {
		r := h.call("GET", "/attendance/my-sessions?status="+status, tok, nil)
		expect(t, r, http.StatusOK)
		if r.total() != 1 || r.list()[0]["id"] != want {
			t.Fatalf("status=%s: %s", status, r.Raw)
		}
		if got := r.list()[0]["activityStatus"]; got != map[string]string{"active": "ACTIVE", "recent": "RECENT", "inactive": "INACTIVE"}[status] {
			t.Fatalf("status=%s: activityStatus %v", status, got)
		}
	}
}

func TestMySessions_AdminWithoutEmployeeGetsEmptyPage(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	testfactory.OpenSession(t, testfactory.NewEmployee(t, org, "Someone"), time.Now())
	r := h.call("GET", "/attendance/my-sessions", testfactory.AdminToken(t, org), nil)
	expect(t, r, http.StatusOK)
	if r.total() != 0 || len(r.list()) != 0 {
		t.Fatalf("admin my-sessions: %s", r.Raw)
	}
}

func TestOrgSessions_IsGone(t *testing.T) {
	t.Parallel()
	h := setup(t)
	r := h.call("GET", "/attendance/org-sessions", testfactory.AdminToken(t, testfactory.NewOrg(t)), nil)
	expectError(t, r, http.StatusGone, "GONE", "GET /attendance/org-sessions has been removed. Use GET /admin/sessions instead.")
}

func TestAdminSessions_LatestPerEmployeeOrderedByActivityAcrossPages(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	now := time.Now()
	inactive := testfactory.NewEmployee(t, org, "Inactive")
	testfactory.ClosedSession(t, inactive, now.Add(-100*time.Hour), now.Add(-90*time.Hour))
	recent := testfactory.NewEmployee(t, org, "Recent")
	testfactory.ClosedSession(t, recent, now.Add(-100*time.Hour), now.Add(-99*time.Hour))
	recentLatest := testfactory.ClosedSession(t, recent, now.Add(-3*time.Hour), now.Add(-time.Hour))
	active := testfactory.NewEmployee(t, org, "Active")
	activeSession := testfactory.OpenSession(t, active, now.Add(-time.Hour))
	testfactory.NewEmployee(t, org, "Never checked in")
	tok := testfactory.AdminToken(t, org)

	var got []map[string]any
	for page := 1; page <= 3; page++ {
		r := h.call("GET", "/admin/sessions?limit=1&page="+strconv.Itoa(page), tok, nil)
		expect(t, r, http.StatusOK)
		if r.total() != 3 {
			t.Fatalf("total %d, want 3 employees with sessions: %s", r.total(), r.Raw)
		}
		got = append(got, r.list()...)
	}
	want := []struct{ emp, status, name string }{
		{active.ID.String(), "ACTIVE", "Active"}, {recent.ID.String(), "RECENT", "Recent"}, {inactive.ID.String(), "INACTIVE", "Inactive"},
	}
	for i, w := range want {
		if got[i]["employee_id"] != w.emp || got[i]["activityStatus"] != w.status || got[i]["employee_name"] != w.name {
			t.Fatalf("row %d = %v, want %v", i, got[i], w)
		}
	}
	if got[0]["id"] != activeSession.String() || got[1]["id"] != recentLatest.String() {
		t.Fatalf("not the latest session per employee: %v", got)
	}

	r := h.call("GET", "/admin/sessions?status=recent", tok, nil)
	if r.total() != 1 || r.list()[0]["employee_id"] != recent.ID.String() {
		t.Fatalf("status=recent: %s", r.Raw)
	}
	hist := h.call("GET", "/admin/sessions?employee_id="+recent.ID.String(), tok, nil)
	expect(t, hist, http.StatusOK)
	if hist.total() != 2 || hist.list()[0]["employee_code"] != recent.Code || hist.list()[0]["employee_name"] != "Recent" {
		t.Fatalf("history: %s", hist.Raw)
	}
}

func TestAdminSessions_NeverShowAnotherOrganization(t *testing.T) {
	t.Parallel()
	h := setup(t)
	mine, theirs := testfactory.NewOrg(t), testfactory.NewOrg(t)
	now := time.Now()
	testfactory.OpenSession(t, testfactory.NewEmployee(t, mine, "Mine"), now)
	foreign := testfactory.NewEmployee(t, theirs, "Theirs")
	testfactory.OpenSession(t, foreign, now)
	tok := testfactory.AdminToken(t, mine)

	r := h.call("GET", "/admin/sessions", tok, nil)
	expect(t, r, http.StatusOK)
	if r.total() != 1 || r.list()[0]["employee_name"] != "Mine" {
		t.Fatalf("list shows other tenants: %s", r.Raw)
	}
	r = h.call("GET", "/admin/sessions?employee_id="+foreign.ID.String(), tok, nil)
	expect(t, r, http.StatusOK)
	if r.total() != 0 || len(r.list()) != 0 {
		t.Fatalf("foreign employee's history visible: %s", r.Raw)
	}
}

func TestAdminSessions_EmployeeIsForbidden(t *testing.T) {
	t.Parallel()
	h := setup(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Nosy")
	expectError(t, h.call("GET", "/admin/sessions", testfactory.EmployeeToken(t, emp), nil),
		http.StatusForbidden, "FORBIDDEN", "This action requires ADMIN role")
}
