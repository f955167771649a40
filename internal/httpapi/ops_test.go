package httpapi

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
	"github.com/fieldtrack/fieldtrack/internal/webhook/webhooktest"
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

// busyOrganization gives org work in every state the operations endpoints count: deliveries pending,
// dead-lettered and delivered (to a webhook that is never called), events not handed off yet, and
// distance computations failed.
func busyOrganization(t *testing.T, h *harness, org testfactory.Org) {
	t.Helper()
	p := testfactory.Pool(t)
	if _, err := p.Exec(t.Context(), `INSERT INTO webhooks (organization_id, url, secret, events)
		VALUES ($1, 'http://127.0.0.1:1/ops', 'whsec-0123456789abcdef', ARRAY['session.checkin', 'session.checkout'])`,
		org.ID); err != nil {
		t.Fatal(err)
	}
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Busy"))
	for range 3 {
		expect(t, h.call("POST", "/attendance/check-in", tok, nil), http.StatusCreated)
		expect(t, h.call("POST", "/attendance/check-out", tok, nil), http.StatusOK)
	}
	webhooktest.Dispatch(t, p, org.ID)
	if _, err := p.Exec(t.Context(), `UPDATE webhook_deliveries d SET status = s.status, attempt_count = s.attempts
		FROM (SELECT id, CASE WHEN row_number() OVER (ORDER BY id) = 1 THEN 'failed' ELSE 'success' END AS status,
		             row_number() OVER (ORDER BY id)::int + 1 AS attempts
		        FROM webhook_deliveries WHERE organization_id = $1 ORDER BY id LIMIT 3) s
		WHERE d.organization_id = $1 AND d.id = s.id`, org.ID); err != nil {
		t.Fatal(err)
	}
	expect(t, h.call("POST", "/attendance/check-in", tok, nil), http.StatusCreated) // not handed off
	failedSession(t, testfactory.NewEmployee(t, org, "Failing"))
}

// An admin sees its own organization's figures only: everything another organization does leaves every
// figure of the operations endpoints unchanged, and nothing of the shared pipeline (listener, slot,
// stream position) is in the answers. workers is about this process's parts, not about any tenant.
func TestOps_AnotherOrganizationsActivityChangesNoFigure(t *testing.T) {
	t.Parallel()
	h := setup(t)
	mine, theirs := testfactory.NewOrg(t), testfactory.NewOrg(t)
	busyOrganization(t, h, mine)
	// A listener of another test process may hand this organization's events off at any time: do it
	// now, so that nothing of its own changes between the two looks.
	webhooktest.Dispatch(t, testfactory.Pool(t), mine.ID)
	admin := testfactory.AdminToken(t, mine)
	figures := func() map[string]any {
		t.Helper()
		out := map[string]any{}
		for _, path := range []string{"/admin/queues", "/internal/queues/status", "/admin/system-health"} {
			r := h.call("GET", path, admin, nil)
			expect(t, r, http.StatusOK)
			for _, global := range []string{"listener", "events", "streamPosition", "slotLagBytes", "ackedLsn"} {
				if strings.Contains(string(r.Raw), `"`+global+`"`) {
					t.Fatalf("%s shows %q: %s", path, global, r.Raw)
				}
			}
			delete(r.Body, "timestamp")
			delete(r.Body, "workers")
			out[path] = r.Body
		}
		return out
	}
	before := figures()
	q := before["/admin/queues"].(map[string]any)["queues"].(map[string]any)
	if q["webhook"].(map[string]any)["dlq"] != 1.0 || q["distance"].(map[string]any)["failed"] != 1.0 {
		t.Fatalf("this organization's own figures are not counted: %v", q)
	}

	busyOrganization(t, h, theirs)
	if after := figures(); !reflect.DeepEqual(before, after) {
		t.Fatalf("another organization's activity changed this one's figures:\nbefore %v\nafter  %v", before, after)
	}
}

// /internal/metrics counts what this process did for the caller's organization only; /internal/ready-deep
// checks the database afresh and tells when the organization's last event was handed off.
func TestInternal_MetricsAndDeepReadinessOfTheOrganization(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond)
	org := testfactory.NewOrg(t)
	tr := newTracked(t, org, "Internal", now.Add(-time.Hour))
	other := newTracked(t, testfactory.NewOrg(t), "Elsewhere", now.Add(-time.Hour))
	g := newTrack(3, 48.1, 11.5, now.Add(-30*time.Minute)).drive(4, 5*time.Second, 10, 0, gaussian(3), 5)
	if n := sendBatch(t, h, tr, g.fixes); n != len(g.fixes) {
		t.Fatalf("stored %d", n)
	}
	sendBatch(t, h, other, g.fixes)
	admin := testfactory.AdminToken(t, org)
	checkOutSession(t, h, tr)
	expect(t, h.call("POST", "/attendance/"+tr.session.String()+"/recalculate", admin, nil), http.StatusOK)

	m := h.call("GET", "/internal/metrics", admin, nil)
	expect(t, m, http.StatusOK)
	if m.Body["totalLocationsInserted"] != float64(len(g.fixes)) || m.Body["totalRecalculations"] != 1.0 ||
		m.Body["queueDepth"] != 0.0 || m.Body["success"] != nil {
		t.Fatalf("internal metrics %s, want %d fixes and 1 recalculation of this organization only", m.Raw, len(g.fixes))
	}
	d := h.call("GET", "/internal/ready-deep", admin, nil)
	expect(t, d, http.StatusOK) // no background part runs in this test server: workers skipped
	checks := d.data()["checks"].(map[string]any)
	if checks["database"].(map[string]any)["status"] != "ok" || checks["workers"].(map[string]any)["status"] != "skipped" ||
		d.data()["status"] != "healthy" {
		t.Fatalf("ready-deep %s", d.Raw)
	}
}
