package httpapi

import (
	"net/http"
	"testing"

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
