package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// An organization's admins read the settings in force (the defaults until one changes them), change some
// of them within their ranges, and see the change in the audit log; no other organization sees it.
func TestTrackingSettings_DefaultsThenAnAuditedChangeOfTheOrganizationOnly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	tok, otherTok := testfactory.AdminToken(t, org), testfactory.AdminToken(t, other)

	defaults := map[string]any{"max_accuracy_m": 100.0, "max_speed_mps": 70.0, "jitter_floor_m": 5.0,
		"stay_radius_m": 50.0, "stay_min_seconds": 120.0, "max_session_hours": 168.0, "customized": false, "updated_at": nil}
	got := h.call("GET", "/admin/tracking-settings", tok, nil)
	expect(t, got, http.StatusOK)
	for k, v := range defaults {
		if got.data()[k] != v {
			t.Fatalf("defaults: %s = %v, want %v (%s)", k, got.data()[k], v, got.Raw)
		}
	}

	changed := h.call("PATCH", "/admin/tracking-settings", tok, map[string]any{"max_accuracy_m": 60, "stay_min_seconds": 180})
	expect(t, changed, http.StatusOK)
	again := h.call("PATCH", "/admin/tracking-settings", tok, map[string]any{"jitter_floor_m": 0})
	expect(t, again, http.StatusOK)
	d := h.call("GET", "/admin/tracking-settings", tok, nil).data()
	if d["max_accuracy_m"] != 60.0 || d["stay_min_seconds"] != 180.0 || d["jitter_floor_m"] != 0.0 ||
		d["max_speed_mps"] != 70.0 || d["customized"] != true || d["updated_at"] == nil {
		t.Fatalf("after two changes: %v", d)
	}
	if o := h.call("GET", "/admin/tracking-settings", otherTok, nil).data(); o["max_accuracy_m"] != 100.0 || o["customized"] != false {
		t.Fatalf("another organization sees %v", o)
	}

	// Audited against what was in force: the first change against the defaults, only what changed.
	rows := auditEvents(t, h, tok, "?event=tracking_settings.updated")
	if len(rows) != 2 {
		t.Fatalf("%d audit rows, want 2: %v", len(rows), rows)
	}
	first, _ := json.Marshal(rows[1]["payload"])
	if string(first) != `{"changes":{"max_accuracy_m":{"new":60,"old":100},"stay_min_seconds":{"new":180,"old":120}}}` ||
		rows[1]["actor_type"] != "user" || rows[1]["resource_type"] != "tracking_settings" {
		t.Fatalf("first change audited as %v", rows[1])
	}
	if n := len(auditEvents(t, h, otherTok, "?event=tracking_settings.updated")); n != 0 {
		t.Fatalf("the other organization has %d audit rows", n)
	}
}

// Out-of-range values, the wrong types and an empty change are 400s naming the field; an employee and a
// key without admin:all are refused; a DBA's UPDATE is held to the same ranges.
func TestTrackingSettings_RangesAndRoles(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	for body, field := range map[string]string{
		`{"max_accuracy_m": 0}`:       "max_accuracy_m",
		`{"max_speed_mps": 151}`:      "max_speed_mps",
		`{"jitter_floor_m": -1}`:      "jitter_floor_m",
		`{"stay_radius_m": 4}`:        "stay_radius_m",
		`{"stay_min_seconds": 12.5}`:  "stay_min_seconds",
		`{"max_session_hours": 337}`:  "max_session_hours",
		`{"max_accuracy_m": "sixty"}`: "max_accuracy_m",
		`{}`:                          "",
	} {
		r := h.call("PATCH", "/admin/tracking-settings", tok, body)
		expect(t, r, http.StatusBadRequest)
		if !strings.Contains(string(r.Raw), field) {
			t.Errorf("%s: the 400 does not name %s: %s", body, field, r.Raw)
		}
	}
	if d := h.call("GET", "/admin/tracking-settings", tok, nil).data(); d["customized"] != false {
		t.Fatalf("a refused change was stored: %v", d)
	}
	emp := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Not an admin"))
	expect(t, h.call("GET", "/admin/tracking-settings", emp, nil), http.StatusForbidden)
	expect(t, h.call("PATCH", "/admin/tracking-settings", emp, map[string]any{"max_speed_mps": 10}), http.StatusForbidden)

	p := testfactory.Pool(t)
	if _, err := p.Exec(t.Context(), `INSERT INTO tracking_settings (organization_id, max_speed_mps) VALUES ($1, 500)`, org.ID); err == nil ||
		!strings.Contains(err.Error(), "tracking_settings_max_speed_range") {
		t.Fatalf("a DBA's out-of-range insert: %v", err)
	}
}

// A change recalculates nothing by itself; a recalculation uses the values in force.
func TestTrackingSettings_ARecalculationUsesTheNewValues(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	now := time.Now().Truncate(time.Millisecond)
	tr := newTracked(t, org, "Recounted", now.Add(-2*time.Hour))
	g := newTrack(31, 48.1, 11.5, now.Add(-90*time.Minute)).drive(60, 10*time.Second, 15, 90, gaussian(3), 80)
	km := driveKm(t, h, tr, g.fixes)
	if km <= 0 {
		t.Fatalf("drove %.3f km (%.0f m really)", km, g.trueM)
	}
	// The fixes report 80 m: with 50 m as the worst accuracy allowed, none is usable.
	expect(t, h.call("PATCH", "/admin/tracking-settings", admin, map[string]any{"max_accuracy_m": 50}), http.StatusOK)
	if s := mySession(t, h, tr.tok, tr.session); kmOf(t, s) != km {
		t.Fatalf("the change recalculated the session: %v, was %v", s["total_distance_km"], km)
	}
	r := h.call("POST", "/attendance/"+tr.session.String()+"/recalculate", admin, nil)
	expect(t, r, http.StatusOK)
	if r.data()["total_distance_km"] != 0.0 {
		t.Fatalf("recalculated with max_accuracy_m 50: %s", r.Raw)
	}
}

// The report's routes: an admin reads any session of the organization, an employee only its own (another's
// is 404), another organization's session is 404 on both, a session without fixes has an empty report.
func TestDistanceReport_WhoReadsWhichSession(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	admin, otherAdmin := testfactory.AdminToken(t, org), testfactory.AdminToken(t, other)
	now := time.Now().Truncate(time.Millisecond)
	tr := newTracked(t, org, "Reported", now.Add(-time.Hour))
	colleague := newTracked(t, org, "Colleague", now.Add(-time.Hour))
	g := newTrack(7, 48.1, 11.5, now.Add(-50*time.Minute)).drive(30, 10*time.Second, 10, 0, gaussian(3), 5)
	uploadFixes(t, h, tr, g.fixes, 100)

	adminPath := "/admin/sessions/" + tr.session.String() + "/distance-report"
	ownPath := "/attendance/" + tr.session.String() + "/distance-report"
	a := h.call("GET", adminPath, admin, nil)
	expect(t, a, http.StatusOK)
	fixes, _ := a.data()["fixes"].(map[string]any)
	if fixes["received"] != float64(len(g.fixes)) || a.data()["checkout_at"] != nil || a.data()["stored_distance_km"] != nil {
		t.Fatalf("an open session's report: %s", a.Raw)
	}
	expect(t, h.call("GET", ownPath, tr.tok, nil), http.StatusOK)
	expect(t, h.call("GET", ownPath, admin, nil), http.StatusOK)
	expectError(t, h.call("GET", ownPath, colleague.tok, nil), http.StatusNotFound, "NOT_FOUND", "Attendance session not found")
	expect(t, h.call("GET", adminPath, tr.tok, nil), http.StatusForbidden)
	expect(t, h.call("GET", adminPath, otherAdmin, nil), http.StatusNotFound)
	expect(t, h.call("GET", ownPath, otherAdmin, nil), http.StatusNotFound)
	expect(t, h.call("GET", "/admin/sessions/not-a-uuid/distance-report", admin, nil), http.StatusBadRequest)
	expect(t, h.call("GET", adminPath+"?simplify=-1", admin, nil), http.StatusBadRequest)
	expect(t, h.call("GET", ownPath+"?simplify=abc", tr.tok, nil), http.StatusBadRequest)

	empty := h.call("GET", "/admin/sessions/"+colleague.session.String()+"/distance-report", admin, nil)
	expect(t, empty, http.StatusOK)
	track, _ := empty.data()["track"].(map[string]any)
	if empty.data()["distance_m"] != 0.0 || track["type"] != "LineString" || len(track["coordinates"].([]any)) != 0 {
		t.Fatalf("a session without fixes: %s", empty.Raw)
	}
}
