package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// failedSession stores a closed session whose distance computation failed, as the recalculation does.
func failedSession(t *testing.T, e testfactory.Employee) uuid.UUID {
	t.Helper()
	now := time.Now()
	id := testfactory.ClosedSession(t, e, now.Add(-2*time.Hour), now.Add(-time.Hour))
	p := testfactory.Pool(t)
	if _, err := p.Exec(t.Context(), `UPDATE attendance_sessions SET distance_recalculation_status = 'failed' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(t.Context(), `INSERT INTO session_summaries (organization_id, session_id, last_error)
		VALUES ($1, $2, 'boom') ON CONFLICT (organization_id, session_id) DO UPDATE SET last_error = 'boom'`, e.OrgID, id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestOps_QueuesAndHealthCountOnlyTheCallersOrganization(t *testing.T) {
	t.Parallel()
	h := setup(t)
	mine, theirs := testfactory.NewOrg(t), testfactory.NewOrg(t)
	failedSession(t, testfactory.NewEmployee(t, mine, "Mine"))
	failedSession(t, testfactory.NewEmployee(t, theirs, "Theirs"))
	failedSession(t, testfactory.NewEmployee(t, theirs, "Theirs too"))
	tok := testfactory.AdminToken(t, mine)

	q := h.call("GET", "/admin/queues", tok, nil)
	expect(t, q, http.StatusOK)
	distance := q.Body["queues"].(map[string]any)["distance"].(map[string]any)
	if distance["failed"] != 1.0 {
		t.Fatalf("distance counts %v, want exactly this organization's one failure", distance)
	}
	health := h.call("GET", "/admin/system-health", tok, nil)
	expect(t, health, http.StatusOK)
	if health.Body["webhooks"].(map[string]any)["successRatePct"] != 100.0 {
		t.Fatalf("success rate without deliveries: %s", health.Raw)
	}
	expect(t, h.call("GET", "/internal/queues/status", tok, nil), http.StatusOK)
	emp := testfactory.NewEmployee(t, mine, "Emp")
	expectError(t, h.call("GET", "/admin/queues", testfactory.EmployeeToken(t, emp), nil), http.StatusForbidden, "FORBIDDEN", "")
}

func TestRetryIntents_ListFailedWorkWithPagesAndFilters(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Failing")
	first, second := failedSession(t, emp), failedSession(t, emp)
	failedSession(t, testfactory.NewEmployee(t, other, "Elsewhere"))
	tok := testfactory.AdminToken(t, org)

	r := h.call("GET", "/admin/retry-intents?status=failed&page=1&limit=1", tok, nil)
	expect(t, r, http.StatusOK)
	if r.total() != 2 || len(r.list()) != 1 {
		t.Fatalf("failed intents: %s", r.Raw)
	}
	got := r.list()[0]
	if got["queue_name"] != "distance-engine" || got["error_message"] != "boom" ||
		(got["job_key"] != first.String() && got["job_key"] != second.String()) {
		t.Fatalf("intent %v", got)
	}
	if all := h.call("GET", "/admin/retry-intents?status=all", tok, nil); all.total() != 2 {
		t.Fatalf("all intents: %s", all.Raw)
	}
	if pending := h.call("GET", "/admin/retry-intents", tok, nil); pending.total() != 0 {
		t.Fatalf("default (pending) intents: %s", pending.Raw)
	}
	expectError(t, h.call("GET", "/admin/retry-intents?status=bogus", tok, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
}
