package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// weekStart is Monday 00:00 UTC of t's week, where /dashboard/my-summary's week begins.
func weekStart(t time.Time) time.Time {
	t = t.UTC()
	day := (int(t.Weekday()) + 6) % 7 // Monday is 0
	return time.Date(t.Year(), t.Month(), t.Day()-day, 0, 0, 0, 0, time.UTC)
}

func TestAuthMe_AnswersTheCallersClaims(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	tok, err := auth.Mint([]byte(testfactory.Secret), auth.MintOptions{Subject: org.AdminUserID.String(), Role: auth.RoleAdmin,
		OrgID: org.ID, Email: "boss@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	r := h.call("GET", "/auth/me", tok, nil)
	expect(t, r, http.StatusOK)
	d := r.data()
	if d["id"] != org.AdminUserID.String() || d["role"] != "ADMIN" || d["orgId"] != org.ID.String() || d["email"] != "boss@example.com" {
		t.Fatalf("me %s", r.Raw)
	}
	emp := testfactory.NewEmployee(t, org, "Me")
	if d := h.call("GET", "/auth/me", testfactory.EmployeeToken(t, emp), nil).data(); d["role"] != "EMPLOYEE" || d["id"] != emp.UserID.String() {
		t.Fatalf("employee's me %v", d)
	}
	expectError(t, h.call("GET", "/auth/me", "", nil), http.StatusUnauthorized, "UNAUTHORIZED", "")
}

func TestProfileMe_IsTheEmployeesOwnWithItsStats(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Profiled")
	tok := testfactory.EmployeeToken(t, emp)
	now := time.Now()
	testfactory.ClosedSession(t, emp, now.Add(-3*time.Hour), now.Add(-2*time.Hour))
	approved := fileExpense(t, h, tok, 4, "Approved one")["id"].(string)
	fileExpense(t, h, tok, 5, "Pending one")
	expect(t, h.call("PATCH", "/admin/expenses/"+approved, testfactory.AdminToken(t, org), map[string]any{"status": "APPROVED"}), http.StatusOK)
	testfactory.ClosedSession(t, testfactory.NewEmployee(t, org, "Colleague"), now.Add(-3*time.Hour), now.Add(-2*time.Hour))

	r := h.call("GET", "/profile/me", tok, nil)
	expect(t, r, http.StatusOK)
	d := r.data()
	stats, _ := d["stats"].(map[string]any)
	if d["id"] != emp.ID.String() || d["name"] != "Profiled" || d["employee_code"] != emp.Code || d["is_active"] != true ||
		d["activityStatus"] != "RECENT" || d["last_activity_at"] == nil || d["created_at"] == nil {
		t.Fatalf("profile %s", r.Raw)
	}
	if stats["totalSessions"] != 1.0 || stats["totalDurationSeconds"] != 3600.0 || stats["expensesSubmitted"] != 2.0 ||
		stats["expensesApproved"] != 1.0 || stats["totalDistanceKm"] != 0.0 {
		t.Fatalf("stats %v", stats)
	}
	// An admin has no employee profile: the original's shape for it.
	admin := h.call("GET", "/profile/me", testfactory.AdminToken(t, org), nil)
	expect(t, admin, http.StatusOK)
	if admin.Body["data"] != nil || admin.Body["meta"].(map[string]any)["hasProfile"] != false {
		t.Fatalf("an admin's profile %s", admin.Raw)
	}
	// Another issuer's token may name an employee this database does not have (the caller check lets
	// unknown users pass): there is no profile to show.
	stranger := testfactory.Employee{OrgID: org.ID, ID: uuid.New(), UserID: uuid.New()}
	expectError(t, h.call("GET", "/profile/me", testfactory.EmployeeToken(t, stranger), nil), http.StatusNotFound,
		"NOT_FOUND", "Employee not found")
}

func TestEmployeeProfile_IsTheAdminsViewWithRecentSessionsAndExpenses(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	emp := testfactory.NewEmployee(t, org, "Watched")
	now := time.Now()
	for i := 0; i < 12; i++ {
		at := now.Add(-time.Duration(48+i*24) * time.Hour)
		testfactory.ClosedSession(t, emp, at, at.Add(30*time.Minute))
	}
	open := testfactory.OpenSession(t, emp, now.Add(-10*time.Minute))
	fileExpense(t, h, testfactory.EmployeeToken(t, emp), 9.99, "Lunch")

	path := "/admin/employees/" + emp.ID.String() + "/profile"
	r := h.call("GET", path, admin, nil)
	expect(t, r, http.StatusOK)
	d := r.data()
	e, _ := d["employee"].(map[string]any)
	summary, _ := d["summary"].(map[string]any)
	sessions, _ := d["recentSessions"].([]any)
	expenses, _ := d["expenses"].([]any)
	if e["id"] != emp.ID.String() || e["is_checked_in"] != true || e["last_check_in_at"] == nil || e["activity_status"] != "ACTIVE" {
		t.Fatalf("employee %v", e)
	}
	if summary["totalSessions"] != 13.0 || summary["expensesSubmitted"] != 1.0 || summary["totalDurationSeconds"] != 12*1800.0 {
		t.Fatalf("summary %v", summary)
	}
	if len(sessions) != 10 || sessions[0].(map[string]any)["id"] != open.String() {
		t.Fatalf("recent sessions: %d, first %v; want the 10 latest, the open one first", len(sessions), sessions[0])
	}
	if len(expenses) != 1 || expenses[0].(map[string]any)["amount"] != 9.99 {
		t.Fatalf("expenses %v", expenses)
	}
	expectError(t, h.call("GET", path, testfactory.AdminToken(t, testfactory.NewOrg(t)), nil), http.StatusNotFound, "NOT_FOUND", "Employee not found")
	expectError(t, h.call("GET", "/admin/employees/"+uuid.NewString()+"/profile", admin, nil), http.StatusNotFound, "NOT_FOUND", "Employee not found")
	expectError(t, h.call("GET", path, testfactory.EmployeeToken(t, emp), nil), http.StatusForbidden, "FORBIDDEN", "")
}

func TestMySummary_CountsThisWeeksWorkOnly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Weekly")
	now := time.Now().UTC()
	start := weekStart(now)
	checkin := now.Add(-40 * time.Minute)
	if checkin.Before(start) {
		checkin = start
	}
	checkout := checkin.Add(36 * time.Minute)
	if checkout.After(now) {
		checkout = now
	}
	testfactory.ClosedSession(t, emp, checkin, checkout)
	testfactory.ClosedSession(t, emp, start.Add(-50*time.Hour), start.Add(-49*time.Hour)) // last week
	testfactory.ClosedSession(t, testfactory.NewEmployee(t, org, "Colleague"), checkin, checkout)
	fileExpense(t, h, testfactory.EmployeeToken(t, emp), 2, "Water")

	r := h.call("GET", "/dashboard/my-summary", testfactory.EmployeeToken(t, emp), nil)
	expect(t, r, http.StatusOK)
	d := r.data()
	hours := float64(int(checkout.Sub(checkin).Seconds()*100/3600+0.5)) / 100
	if d["sessionsThisWeek"] != 1.0 || d["distanceThisWeek"] != 0.0 || d["hoursThisWeek"] != hours ||
		d["expensesSubmitted"] != 1.0 || d["expensesApproved"] != 0.0 {
		t.Fatalf("summary %s, want 1 session of %v h", r.Raw, hours)
	}
	zero := h.call("GET", "/dashboard/my-summary", testfactory.AdminToken(t, org), nil)
	expect(t, zero, http.StatusOK)
	if zero.data()["sessionsThisWeek"] != 0.0 || zero.data()["expensesSubmitted"] != 0.0 {
		t.Fatalf("an admin's summary %s, want zeros", zero.Raw)
	}
}
