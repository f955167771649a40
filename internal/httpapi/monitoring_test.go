package httpapi

import (
	"net/http"
	"testing"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func TestMonitoring_StartIsIdempotentStopClosesAndHistoryIsTheAdminsOwn(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)

	expectError(t, h.call("POST", "/admin/stop-monitoring", admin, map[string]any{}), http.StatusNotFound, "NOT_FOUND",
		"No active monitoring session found. Start one first.")
	first := h.call("POST", "/admin/start-monitoring", admin, map[string]any{})
	expect(t, first, http.StatusCreated)
	d := first.data()
	if d["admin_id"] != org.AdminUserID.String() || d["organization_id"] != org.ID.String() || d["ended_at"] != nil || d["started_at"] == nil {
		t.Fatalf("started %s", first.Raw)
	}
	again := h.call("POST", "/admin/start-monitoring", admin, nil)
	expect(t, again, http.StatusCreated)
	if again.data()["id"] != d["id"] {
		t.Fatalf("a second start opened %v, want the open %v", again.data()["id"], d["id"])
	}
	stopped := h.call("POST", "/admin/stop-monitoring", admin, map[string]any{})
	expect(t, stopped, http.StatusOK)
	if stopped.data()["id"] != d["id"] || stopped.data()["ended_at"] == nil {
		t.Fatalf("stopped %s", stopped.Raw)
	}
	expectError(t, h.call("POST", "/admin/stop-monitoring", admin, nil), http.StatusNotFound, "NOT_FOUND", "")
	expect(t, h.call("POST", "/admin/start-monitoring", admin, nil), http.StatusCreated)

	// Another admin of the organization, and an admin elsewhere, have their own.
	colleague, err := auth.Mint([]byte(testfactory.Secret), auth.MintOptions{Role: auth.RoleAdmin, OrgID: org.ID})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, h.call("POST", "/admin/start-monitoring", colleague, nil), http.StatusCreated)
	elsewhere := testfactory.AdminToken(t, testfactory.NewOrg(t))
	expectError(t, h.call("POST", "/admin/stop-monitoring", elsewhere, nil), http.StatusNotFound, "NOT_FOUND", "")

	history := h.call("GET", "/admin/monitoring-history?page=1&limit=1", admin, nil)
	expect(t, history, http.StatusOK)
	if history.total() != 2 || len(history.list()) != 1 || history.list()[0]["ended_at"] != nil {
		t.Fatalf("history page %s, want 2 periods, the open one first", history.Raw)
	}
	if second := h.call("GET", "/admin/monitoring-history?page=2&limit=1", admin, nil).list(); len(second) != 1 || second[0]["id"] != d["id"] {
		t.Fatalf("history page 2 %v", second)
	}
	if r := h.call("GET", "/admin/monitoring-history", elsewhere, nil); r.total() != 0 {
		t.Fatalf("another organization's history %s", r.Raw)
	}
	emp := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Curious"))
	expectError(t, h.call("POST", "/admin/start-monitoring", emp, nil), http.StatusForbidden, "FORBIDDEN", "")
	expectError(t, h.call("GET", "/admin/monitoring-history", emp, nil), http.StatusForbidden, "FORBIDDEN", "")
}
