package httpapi

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func TestCreateEmployee_GeneratesCodesPerOrganization(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)

	first := h.call("POST", "/admin/employees", tok, map[string]any{"name": "Dee", "phone": "+1 555", "unknown": true})
	expect(t, first, http.StatusCreated)
	d := first.data()
	if d["name"] != "Dee" || d["employee_code"] != "EMP0001" || d["organization_id"] != org.ID.String() ||
		d["phone"] != "+1 555" || d["is_active"] != true {
		t.Fatalf("created %s", first.Raw)
	}
	second := h.call("POST", "/admin/employees", tok, map[string]any{"name": "Eve"})
	if second.data()["employee_code"] != "EMP0002" {
		t.Fatalf("second code %v", second.data()["employee_code"])
	}
	got := h.call("GET", "/admin/employees/"+d["id"].(string), tok, nil)
	expect(t, got, http.StatusOK)
	if got.data()["id"] != d["id"] || got.data()["employee_code"] != "EMP0001" {
		t.Fatalf("get %s", got.Raw)
	}
	// Another organization starts its own numbering.
	other := h.call("POST", "/admin/employees", testfactory.AdminToken(t, testfactory.NewOrg(t)), map[string]any{"name": "Fay"})
	if other.data()["employee_code"] != "EMP0001" {
		t.Fatalf("other org code %v", other.data()["employee_code"])
	}
}

func TestCreateEmployee_DuplicateCodeAndUnknownUserAre400(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	expect(t, h.call("POST", "/admin/employees", tok, map[string]any{"name": "A", "employee_code": "X-1"}), http.StatusCreated)
	expectError(t, h.call("POST", "/admin/employees", tok, map[string]any{"name": "B", "employee_code": "X-1"}),
		http.StatusBadRequest, "VALIDATION_ERROR", "employee_code is already in use within this organization")
	expectError(t, h.call("POST", "/admin/employees", tok, map[string]any{"name": "C", "user_id": uuid.NewString()}),
		http.StatusBadRequest, "VALIDATION_ERROR", "user_id does not correspond to any registered user")
}

func TestCreateEmployee_ValidationNamesEachField(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tok := testfactory.AdminToken(t, testfactory.NewOrg(t))
	r := h.call("POST", "/admin/employees", tok, map[string]any{"name": 42, "user_id": "nope", "phone": 7})
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
	fields := map[string]bool{}
	for _, f := range r.Body["details"].(map[string]any)["fields"].([]any) {
		fields[f.(map[string]any)["field"].(string)] = true
	}
	for _, want := range []string{"name", "user_id", "phone"} {
		if !fields[want] {
			t.Fatalf("field %s not named in %s", want, r.Raw)
		}
	}
	r = h.call("POST", "/admin/employees", tok, map[string]any{})
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
	if r.Body["error"] != `body/name property "name" is missing` {
		t.Fatalf("missing name: %s", r.Raw)
	}
}

func TestGetEmployee_OtherOrganizationsIDIs404(t *testing.T) {
	t.Parallel()
	h := setup(t)
	mine, theirs := testfactory.NewOrg(t), testfactory.NewOrg(t)
	foreign := testfactory.NewEmployee(t, theirs, "Foreign")
	expectError(t, h.call("GET", "/admin/employees/"+foreign.ID.String(), testfactory.AdminToken(t, mine), nil),
		http.StatusNotFound, "NOT_FOUND", "Employee not found")
	// The owner of the row does see it.
	expect(t, h.call("GET", "/admin/employees/"+foreign.ID.String(), testfactory.AdminToken(t, theirs), nil), http.StatusOK)
	expectError(t, h.call("GET", "/admin/employees/"+uuid.NewString(), testfactory.AdminToken(t, mine), nil),
		http.StatusNotFound, "NOT_FOUND", "Employee not found")
}

func TestGetEmployee_NonUUIDIs400(t *testing.T) {
	t.Parallel()
	h := setup(t)
	r := h.call("GET", "/admin/employees/not-a-uuid", testfactory.AdminToken(t, testfactory.NewOrg(t)), nil)
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "params/id id must be a valid UUID")
}

func TestEmployees_EmployeeRoleIsForbidden(t *testing.T) {
	t.Parallel()
	h := setup(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Self")
	tok := testfactory.EmployeeToken(t, emp)
	expectError(t, h.call("GET", "/admin/employees/"+emp.ID.String(), tok, nil), http.StatusForbidden, "FORBIDDEN", "This action requires ADMIN role")
	expectError(t, h.call("POST", "/admin/employees", tok, map[string]any{"name": "X"}), http.StatusForbidden, "FORBIDDEN", "This action requires ADMIN role")
}

func TestEmployees_ListShowsEachStateAndFiltersBySearchAndSegment(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	now := time.Now()
	working := testfactory.NewEmployee(t, org, "Alice Working")
	testfactory.OpenSession(t, working, now.Add(-time.Hour))
	recent := testfactory.NewEmployee(t, org, "Bob Recent")
	testfactory.ClosedSession(t, recent, now.Add(-3*time.Hour), now.Add(-2*time.Hour))
	gone := testfactory.NewEmployee(t, org, "Cara Gone")
	testfactory.ClosedSession(t, gone, now.Add(-72*time.Hour), now.Add(-71*time.Hour))
	fresh := testfactory.NewEmployee(t, org, "Dan Fresh")
	late := testfactory.NewEmployee(t, org, "Eve Working")
	testfactory.OpenSession(t, late, now.Add(-10*time.Minute))
	testfactory.NewEmployee(t, testfactory.NewOrg(t), "Alice Elsewhere")

	r := h.call("GET", "/admin/employees?page=1&limit=50", admin, nil)
	expect(t, r, http.StatusOK)
	if r.total() != 5 || len(r.list()) != 5 {
		t.Fatalf("listed %s, want the organization's 5", r.Raw)
	}
	byName := map[string]map[string]any{}
	for _, e := range r.list() {
		byName[e["name"].(string)] = e
	}
	for name, want := range map[string]struct {
		checkedIn bool
		status    string
		checkIn   bool
	}{
		working.Name: {true, "ACTIVE", true}, recent.Name: {false, "RECENT", true},
		gone.Name: {false, "INACTIVE", true}, fresh.Name: {false, "INACTIVE", false}, late.Name: {true, "ACTIVE", true},
	} {
		e := byName[name]
		if e == nil || e["is_checked_in"] != want.checkedIn || e["activity_status"] != want.status ||
			(e["last_check_in_at"] != nil) != want.checkIn || e["organization_id"] != org.ID.String() {
			t.Errorf("%s listed as %v, want %+v", name, e, want)
		}
	}
	for q, want := range map[string][]string{
		"search=alice":                       {working.Name},
		"search=" + gone.Code:                {gone.Name},
		"search=RECENT":                      {recent.Name},             // any case
		"segment=active":                     {late.Name, working.Name}, // latest check-in first
		"segment=recent":                     {recent.Name},
		"segment=inactive":                   {gone.Name, fresh.Name},
		"segment=inactive&search=dan":        {fresh.Name},
		"segment=&search=&active=":           {working.Name, recent.Name, gone.Name, fresh.Name, late.Name}, // empty filters: none
		"search=nobody":                      {},
		"limit=2&page=2":                     {gone.Name, fresh.Name}, // employee-number order
		"limit=2&page=3":                     {late.Name},
		"search=alice&segment=active&page=1": {working.Name},
	} {
		r := h.call("GET", "/admin/employees?"+q, admin, nil)
		expect(t, r, http.StatusOK)
		var got []string
		for _, e := range r.list() {
			got = append(got, e["name"].(string))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("?%s listed %v, want %v", q, got, want)
		}
	}
	expectError(t, h.call("GET", "/admin/employees?segment=sleeping", admin, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("GET", "/admin/employees?limit=101", admin, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
}

func TestEmployees_PatchChangesNameAndPhoneOfOwnOrganizationOnly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	emp := testfactory.NewEmployee(t, org, "Old Name")
	path := "/admin/employees/" + emp.ID.String()

	r := h.call("PATCH", path, admin, map[string]any{"name": "New Name", "phone": "+44 20"})
	expect(t, r, http.StatusOK)
	if r.data()["name"] != "New Name" || r.data()["phone"] != "+44 20" || r.data()["employee_code"] != emp.Code {
		t.Fatalf("patched %s", r.Raw)
	}
	r = h.call("PATCH", path, admin, map[string]any{"phone": nil})
	expect(t, r, http.StatusOK)
	if r.data()["name"] != "New Name" || r.data()["phone"] != nil {
		t.Fatalf("clearing the phone answered %s", r.Raw)
	}
	empty := h.call("PATCH", path, admin, nil) // no body: only updated_at moves
	expect(t, empty, http.StatusOK)
	if empty.data()["name"] != "New Name" || empty.data()["updated_at"] == r.data()["updated_at"] {
		t.Fatalf("an empty patch answered %s", empty.Raw)
	}
	expect(t, h.call("PATCH", path, admin, "", "Content-Type", "application/json"), http.StatusOK) // as the dashboard sends it
	expectError(t, h.call("PATCH", path, admin, map[string]any{"name": ""}), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("PATCH", path, admin, map[string]any{"name": 7}), http.StatusBadRequest, "VALIDATION_ERROR", "")
	other := testfactory.AdminToken(t, testfactory.NewOrg(t))
	expectError(t, h.call("PATCH", path, other, map[string]any{"name": "Hijacked"}), http.StatusNotFound, "NOT_FOUND", "Employee not found")
	expectError(t, h.call("PATCH", path+"/status", other, map[string]any{"is_active": false}), http.StatusNotFound, "NOT_FOUND", "Employee not found")
	expectError(t, h.call("PATCH", "/admin/employees/nope", admin, map[string]any{"name": "X"}), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("PATCH", path, testfactory.EmployeeToken(t, emp), map[string]any{"name": "Me"}), http.StatusForbidden, "FORBIDDEN", "")
	if got := h.call("GET", path, admin, nil); got.data()["name"] != "New Name" || got.data()["is_active"] != true {
		t.Fatalf("after the refused changes %s", got.Raw)
	}
}

func TestEmployees_DeactivationChecksOutAndBlocksWorkUntilReactivated(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	emp := testfactory.NewEmployee(t, org, "Leaving")
	tok := testfactory.EmployeeToken(t, emp)
	in := h.call("POST", "/attendance/check-in", tok, nil)
	expect(t, in, http.StatusCreated)
	session := in.data()["id"].(string)
	fix := map[string]any{"session_id": session, "latitude": 51.5, "longitude": -0.12, "accuracy": 5,
		"recorded_at": in.data()["checkin_at"]}
	expect(t, h.call("POST", "/locations", tok, fix), http.StatusCreated)

	r := h.call("PATCH", "/admin/employees/"+emp.ID.String()+"/status", admin, map[string]any{"is_active": false})
	expect(t, r, http.StatusOK)
	if r.data()["is_active"] != false {
		t.Fatalf("deactivated %s", r.Raw)
	}
	var open bool
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT checkout_at IS NULL FROM attendance_sessions WHERE id = $1`,
		session).Scan(&open); err != nil || open {
		t.Fatalf("the open session is still open (%v) after deactivation", err)
	}
	// The token has not expired; every request of it is refused anyway (the SQL rules behind it are in
	// internal/db/rls_test.go).
	expectError(t, h.call("POST", "/attendance/check-in", tok, nil), http.StatusUnauthorized, "EMPLOYEE_DEACTIVATED", "This employee is deactivated.")
	expectError(t, h.call("POST", "/locations", tok, fix), http.StatusUnauthorized, "EMPLOYEE_DEACTIVATED", "This employee is deactivated.")
	expectError(t, h.call("POST", "/expenses", tok, map[string]any{"amount": 1, "description": "After leaving"}),
		http.StatusUnauthorized, "EMPLOYEE_DEACTIVATED", "This employee is deactivated.")
	expectError(t, h.call("POST", "/expenses/receipt-upload-url", tok, map[string]any{"extension": "png"}),
		http.StatusUnauthorized, "EMPLOYEE_DEACTIVATED", "This employee is deactivated.")
	if got := h.call("GET", "/admin/employees?segment=active", admin, nil); got.total() != 0 {
		t.Fatalf("a deactivated employee is still checked in: %s", got.Raw)
	}

	expect(t, h.call("PATCH", "/admin/employees/"+emp.ID.String()+"/status", admin, map[string]any{"is_active": true}), http.StatusOK)
	expect(t, h.call("POST", "/attendance/check-in", tok, nil), http.StatusCreated)
	expectError(t, h.call("PATCH", "/admin/employees/"+emp.ID.String()+"/status", admin, map[string]any{"is_active": "no"}),
		http.StatusBadRequest, "VALIDATION_ERROR", "")
}

func TestEmployees_DeactivatedEmployeesFixesOfAClosedSessionAreRefused(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Late Uploader")
	now := time.Now()
	session := testfactory.ClosedSession(t, emp, now.Add(-2*time.Hour), now.Add(-time.Hour))
	late := map[string]any{"session_id": session.String(), "latitude": 51.5, "longitude": -0.12, "accuracy": 5,
		"recorded_at": now.Add(-90 * time.Minute).UTC().Format(time.RFC3339Nano)}
	tok := testfactory.EmployeeToken(t, emp)
	expect(t, h.call("POST", "/locations", tok, late), http.StatusCreated) // late fixes of a closed session are welcome
	expect(t, h.call("PATCH", "/admin/employees/"+emp.ID.String()+"/status", testfactory.AdminToken(t, org),
		map[string]any{"is_active": false}), http.StatusOK)
	late["recorded_at"] = now.Add(-80 * time.Minute).UTC().Format(time.RFC3339Nano)
	expectError(t, h.call("POST", "/locations", tok, late), http.StatusUnauthorized, "EMPLOYEE_DEACTIVATED", "This employee is deactivated.")
	later := map[string]any{"latitude": 51.6, "longitude": -0.12, "accuracy": 5,
		"recorded_at": now.Add(-70 * time.Minute).UTC().Format(time.RFC3339Nano)}
	expectError(t, h.call("POST", "/locations/batch", tok, map[string]any{"session_id": session.String(),
		"points": []any{late, later}}), http.StatusUnauthorized, "EMPLOYEE_DEACTIVATED", "This employee is deactivated.")
}

func TestSearch_FindsEmployeesAndExpensesOfOwnOrganizationOnly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	zed := testfactory.NewEmployee(t, org, "Zed Quixote")
	testfactory.NewEmployee(t, org, "Someone Else")
	fileExpense(t, h, testfactory.EmployeeToken(t, zed), 12, "Quixotic windmill tour")
	fileExpense(t, h, testfactory.EmployeeToken(t, zed), 3, "Coffee")
	theirs := testfactory.NewEmployee(t, other, "Quixote Elsewhere")
	fileExpense(t, h, testfactory.EmployeeToken(t, theirs), 5, "quixote's lunch")

	r := h.call("GET", "/admin/search?q=QUIX&limit=10", admin, nil)
	expect(t, r, http.StatusOK)
	d := r.data()
	emps, _ := d["employees"].([]any)
	exps, _ := d["expenses"].([]any)
	if len(emps) != 1 || emps[0].(map[string]any)["id"] != zed.ID.String() || emps[0].(map[string]any)["is_active"] != true {
		t.Fatalf("employees found %v", emps)
	}
	if len(exps) != 1 || exps[0].(map[string]any)["employee_name"] != "Zed Quixote" || exps[0].(map[string]any)["amount"] != 12.0 {
		t.Fatalf("expenses found %v", exps)
	}
	if r := h.call("GET", "/admin/search?q="+zed.Code, admin, nil); len(r.data()["employees"].([]any)) != 1 {
		t.Fatalf("search by code %s", r.Raw)
	}
	if r := h.call("GET", "/admin/search?q=zzzz", admin, nil); len(r.data()["employees"].([]any))+len(r.data()["expenses"].([]any)) != 0 {
		t.Fatalf("search for nothing %s", r.Raw)
	}
	expectError(t, h.call("GET", "/admin/search", admin, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("GET", "/admin/search?q=a", testfactory.EmployeeToken(t, zed), nil), http.StatusForbidden, "FORBIDDEN", "")
}
