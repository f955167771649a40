package httpapi

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// Uploading and reading back --------------------------------------------------------------------------------

// tracked is an employee with an open session that began well before its fixes.
type tracked struct {
	emp     testfactory.Employee
	tok     string
	session uuid.UUID
}

func newTracked(t *testing.T, org testfactory.Org, name string, checkin time.Time) tracked {
	t.Helper()
	emp := testfactory.NewEmployee(t, org, name)
	return tracked{emp: emp, tok: testfactory.EmployeeToken(t, emp), session: testfactory.OpenSession(t, emp, checkin)}
}

func pointsBody(session uuid.UUID, fixes []fix) map[string]any {
	pts := make([]map[string]any, len(fixes))
	for i, f := range fixes {
		pts[i] = f.json()
	}
	return map[string]any{"session_id": session.String(), "points": pts}
}

// sendBatch posts one batch and returns the number of rows it inserted.
func sendBatch(t *testing.T, h *harness, tr tracked, fixes []fix) int {
	t.Helper()
	r := h.call("POST", "/locations/batch", tr.tok, pointsBody(tr.session, fixes))
	expect(t, r, http.StatusCreated)
	n, ok := r.Body["inserted"].(float64)
	if !ok || r.Body["success"] != true {
		t.Fatalf("batch answer %s", r.Raw)
	}
	return int(n)
}

// uploadFixes posts fixes in batches of at most size and fails unless every fix was new.
func uploadFixes(t *testing.T, h *harness, tr tracked, fixes []fix, size int) {
	t.Helper()
	total := 0
	for i := 0; i < len(fixes); i += size {
		total += sendBatch(t, h, tr, fixes[i:min(i+size, len(fixes))])
	}
	if total != len(fixes) {
		t.Fatalf("inserted %d of %d new fixes", total, len(fixes))
	}
}

// checkOutSession checks the employee out and returns the closed session, whose distance must be computed.
func checkOutSession(t *testing.T, h *harness, tr tracked) map[string]any {
	t.Helper()
	r := h.call("POST", "/attendance/check-out", tr.tok, nil)
	expect(t, r, http.StatusOK)
	s := r.data()
	if s["id"] != tr.session.String() || s["checkout_at"] == nil {
		t.Fatalf("check-out closed %s, want session %s", r.Raw, tr.session)
	}
	if s["distance_recalculation_status"] != "done" {
		t.Fatalf("check-out answered status %v, want done (distance computed in the check-out): %s",
			s["distance_recalculation_status"], r.Raw)
	}
	return s
}

// kmOf reads total_distance_km, failing when it is missing.
func kmOf(t *testing.T, s map[string]any) float64 {
	t.Helper()
	km, ok := s["total_distance_km"].(float64)
	if !ok {
		t.Fatalf("total_distance_km is %v in %v", s["total_distance_km"], s)
	}
	return km
}

// driveKm uploads fixes, checks out and returns the distance the check-out computed.
func driveKm(t *testing.T, h *harness, tr tracked, fixes []fix) float64 {
	t.Helper()
	uploadFixes(t, h, tr, fixes, 100)
	return kmOf(t, checkOutSession(t, h, tr))
}

// mySession finds one of the caller's sessions through GET /attendance/my-sessions.
func mySession(t *testing.T, h *harness, tok string, session uuid.UUID) map[string]any {
	t.Helper()
	r := h.call("GET", "/attendance/my-sessions?limit=100", tok, nil)
	expect(t, r, http.StatusOK)
	for _, s := range r.list() {
		if s["id"] == session.String() {
			return s
		}
	}
	t.Fatalf("session %s not in my-sessions: %s", session, r.Raw)
	return nil
}

func gpsRowCount(t *testing.T, session uuid.UUID) int {
	t.Helper()
	var n int
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT count(*) FROM gps_locations WHERE session_id = $1`,
		session).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func within(got, want, rel float64) bool { return math.Abs(got-want) <= rel*want }

// Distance ---------------------------------------------------------------------------------------------------

func TestDistance_StraightTenKmDriveWithFiveMetreNoiseIsWithinThreePercent(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	tr := newTracked(t, testfactory.NewOrg(t), "Driver", now.Add(-10*time.Hour))
	// 12.5 m/s sampled every 5 s: 160 moves of 62.5 m = 10 km, bearing 30 degrees.
	g := newTrack(1, 48.137, 11.575, now.Add(-5*time.Hour)).drive(160, 5*time.Second, 12.5, 30, gaussian(5), 5)
	if math.Abs(g.trueM-10000) > 1e-6 {
		t.Fatalf("generator drove %.3f m, want 10000", g.trueM)
	}
	km := driveKm(t, h, tr, g.fixes)
	t.Logf("10 km drive, %d fixes: %.3f km", len(g.fixes), km)
	if !within(km, 10, 0.03) {
		t.Fatalf("distance %.3f km, want 10 km within 3%%", km)
	}
	// The README's figure (the path's geodesic length is 9.994 km; 000006's cleaning gave 9.99 km).
	if got := fmt.Sprintf("%.2f", km); got != "10.02" {
		t.Fatalf("distance %s km, the README states 10.02 km", got)
	}
}

func TestDistance_PhoneStillForFourHoursAddsUnder300m(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		nz   noise
		seed uint64
	}{
		{"gaussian sigma 15 m", gaussian(15), 2},
		{"uniform in a 15 m disk", inDisk(15), 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t)
			now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
			tr := newTracked(t, testfactory.NewOrg(t), "Desk", now.Add(-10*time.Hour))
			// Four hours every 5 s: 2,881 fixes.
			g := newTrack(c.seed, -33.8688, 151.2093, now.Add(-5*time.Hour)).stand(4*3600/5+1, 5*time.Second, c.nz, 15)
			if span := g.fixes[len(g.fixes)-1].At.Sub(g.fixes[0].At); span != 4*time.Hour {
				t.Fatalf("generator spans %v, want 4h", span)
			}
			km := driveKm(t, h, tr, g.fixes)
			t.Logf("still phone, %d fixes: %.3f km", len(g.fixes), km)
			if km >= 0.3 {
				t.Fatalf("a still phone travelled %.3f km, want < 0.3", km)
			}
			if km != 0 { // the README's figure: 0.000 km
				t.Fatalf("a still phone travelled %.3f km, the README states 0.000 km", km)
			}
		})
	}
}

func TestDistance_SingleFiftyKmSpikeAddsUnder100m(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	org := testfactory.NewOrg(t)
	clean := newTracked(t, org, "Clean", now.Add(-10*time.Hour))
	spiked := newTracked(t, org, "Spiked", now.Add(-10*time.Hour))

	g := newTrack(4, 52.52, 13.405, now.Add(-5*time.Hour)).drive(160, 5*time.Second, 12.5, 100, gaussian(5), 5)
	withSpike := append([]fix(nil), g.fixes...)
	mid := len(withSpike) / 2
	withSpike[mid].Lat, withSpike[mid].Lon = moveBy(withSpike[mid].Lat, withSpike[mid].Lon, 50_000, 0)

	cleanKm := driveKm(t, h, clean, g.fixes)
	spikedKm := driveKm(t, h, spiked, withSpike)
	t.Logf("without spike %.3f km, with spike %.3f km", cleanKm, spikedKm)
	if !within(cleanKm, 10, 0.03) {
		t.Fatalf("clean drive %.3f km, want 10 km within 3%%", cleanKm)
	}
	if math.Abs(spikedKm-cleanKm) >= 0.1 {
		t.Fatalf("a 50 km spike changed the distance from %.3f to %.3f km, want < 0.1 km difference", cleanKm, spikedKm)
	}
	if spikedKm != cleanKm { // the README's figure: +0.000 km
		t.Fatalf("a 50 km spike changed the distance from %.3f to %.3f km, the README states +0.000 km", cleanKm, spikedKm)
	}
}

// routeRows reads a session's stored route without the per-row identity (id, created_at) and the
// per-employee columns, which differ between otherwise identical uploads.
func routeRows(t *testing.T, h *harness, tr tracked) []string {
	t.Helper()
	r := h.call("GET", "/locations/my-route?sessionId="+tr.session.String(), tr.tok, nil)
	expect(t, r, http.StatusOK)
	rows := make([]string, 0, len(r.list()))
	for _, p := range r.list() {
		if p["session_id"] != tr.session.String() || p["employee_id"] != tr.emp.ID.String() {
			t.Fatalf("route row of another session or employee: %v", p)
		}
		at, err := time.Parse(time.RFC3339Nano, p["recorded_at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, fmt.Sprintf("%s %v %v %v %v", at.UTC().Format(time.RFC3339Nano),
			p["latitude"], p["longitude"], p["accuracy"], p["sequence_number"]))
	}
	return rows
}

func TestDistance_IsInvariantToUploadOrderBatchingAndDuplicates(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	org := testfactory.NewOrg(t)
	// A stop, a drive, a stop, another drive: stays and movement, 340 fixes with millisecond times.
	g := newTrack(5, 40.4168, -3.7038, now.Add(-5*time.Hour).Add(123*time.Millisecond)).
		stand(60, 5*time.Second, gaussian(8), 8).
		drive(100, 5*time.Second, 11, 60, gaussian(5), 5).
		stand(80, 5*time.Second, gaussian(8), 8).
		drive(100, 5*time.Second, 9, 170, gaussian(5), 5)
	fixes := g.fixes

	reversed := make([]fix, len(fixes))
	for i, f := range fixes {
		reversed[len(fixes)-1-i] = f
	}
	shuffled := append([]fix(nil), fixes...)
	rand.New(rand.NewPCG(6, 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	type upload struct {
		name  string
		fixes []fix
		sizes []int // batch sizes, cycled
		twice bool  // send every batch twice
	}
	uploads := []upload{
		{"in order", fixes, []int{100}, false},
		{"reversed", reversed, []int{100}, false},
		{"shuffled", shuffled, []int{100}, false},
		{"batches of 7, 100, 33", fixes, []int{7, 100, 33}, false},
		{"shuffled, every batch twice", shuffled, []int{33, 7, 100}, true},
	}
	var wantRows []string
	var wantKm float64
	for i, u := range uploads {
		tr := newTracked(t, org, u.name, now.Add(-10*time.Hour))
		total, b := 0, 0
		for start := 0; start < len(u.fixes); b++ {
			end := min(start+u.sizes[b%len(u.sizes)], len(u.fixes))
			n := sendBatch(t, h, tr, u.fixes[start:end])
			if n != end-start {
				t.Fatalf("%s: batch %d inserted %d, want %d new rows", u.name, b, n, end-start)
			}
			total += n
			if u.twice {
				if again := sendBatch(t, h, tr, u.fixes[start:end]); again != 0 {
					t.Fatalf("%s: batch %d sent again inserted %d, want 0", u.name, b, again)
				}
			}
			start = end
		}
		if total != len(fixes) || gpsRowCount(t, tr.session) != len(fixes) {
			t.Fatalf("%s: inserted %d, stored %d, want %d", u.name, total, gpsRowCount(t, tr.session), len(fixes))
		}
		km := kmOf(t, checkOutSession(t, h, tr))
		rows := routeRows(t, h, tr)
		t.Logf("%s: %.3f km, %d rows", u.name, km, len(rows))
		if i == 0 {
			wantRows, wantKm = rows, km
			if len(rows) != len(fixes) {
				t.Fatalf("route has %d rows, want %d", len(rows), len(fixes))
			}
			for j, f := range fixes {
				want := fmt.Sprintf("%s %v %v %v %v", f.At.UTC().Format(time.RFC3339Nano), f.Lat, f.Lon, f.Acc, float64(f.Seq))
				if rows[j] != want {
					t.Fatalf("stored row %d = %q, want the uploaded fix %q", j, rows[j], want)
				}
			}
			if km <= 0 {
				t.Fatalf("distance %.3f km, want the drives counted", km)
			}
			continue
		}
		if km != wantKm {
			t.Fatalf("%s: %.3f km, want %.3f km as uploaded in order", u.name, km, wantKm)
		}
		if len(rows) != len(wantRows) {
			t.Fatalf("%s: %d rows, want %d", u.name, len(rows), len(wantRows))
		}
		for j := range rows {
			if rows[j] != wantRows[j] {
				t.Fatalf("%s: row %d = %q, want %q", u.name, j, rows[j], wantRows[j])
			}
		}
	}
}

func TestDistance_TwentyThousandFixSessionIsSummedWhole(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	tr := newTracked(t, testfactory.NewOrg(t), "Long haul", now.Add(-10*time.Hour))
	// 20,000 fixes at 1 s, 10 m/s on a straight line: 19,999 moves of 10 m = 199.99 km.
	g := newTrack(8, 45.0, 7.0, now.Add(-6*time.Hour)).drive(19_999, time.Second, 10, 75, gaussian(1.5), 3)
	if len(g.fixes) != 20_000 || math.Abs(g.trueM-199_990) > 1e-3 {
		t.Fatalf("generator: %d fixes over %.3f m", len(g.fixes), g.trueM)
	}
	start := time.Now()
	uploadFixes(t, h, tr, g.fixes, 100)
	uploaded := time.Since(start)

	start = time.Now()
	s := checkOutSession(t, h, tr)
	took := time.Since(start)
	km := kmOf(t, s)
	t.Logf("20,000 fixes: upload (200 batches) %v, check-out with distance %v, %.3f km", uploaded, took, km)
	if !within(km, 199.99, 0.03) {
		t.Fatalf("distance %.3f km, want 199.99 km within 3%%", km)
	}

	var total, used int
	var summaryKm float64
	err := testfactory.Pool(t).QueryRow(t.Context(),
		`SELECT points_total, points_used, total_distance_km FROM session_summaries WHERE session_id = $1`,
		tr.session).Scan(&total, &used, &summaryKm)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("session_summaries: points_total %d, points_used %d", total, used)
	if total != 20_000 {
		t.Fatalf("points_total %d, want 20000", total)
	}
	if used < 2 || used > total || summaryKm != km {
		t.Fatalf("summary points_used %d, %.3f km; session %.3f km", used, summaryKm, km)
	}
}

// Late uploads ---------------------------------------------------------------------------------------------

func TestDistance_LatePointsInsideAClosedSessionAreAcceptedAndRecalculated(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	tr := newTracked(t, testfactory.NewOrg(t), "Offline", now.Add(-6*time.Hour))
	// Two 2 km legs; the second stays in the phone's offline buffer until after the check-out.
	g := newTrack(9, 51.5074, -0.1278, now.Add(-5*time.Hour)).drive(160, 5*time.Second, 2.5, 0, gaussian(3), 3)
	first := g.fixes
	second := g.drive(160, 5*time.Second, 2.5, 90, gaussian(3), 3).fixes[len(first):]

	uploadFixes(t, h, tr, first, 100)
	closed := checkOutSession(t, h, tr)
	before := kmOf(t, closed)
	if listed := kmOf(t, mySession(t, h, tr.tok, tr.session)); listed != before {
		t.Fatalf("my-sessions shows %.3f km, check-out answered %.3f", listed, before)
	}
	if !within(before, 2, 0.05) {
		t.Fatalf("first leg %.3f km, want about 2 km", before)
	}

	uploadFixes(t, h, tr, second, 100)
	after := mySession(t, h, tr.tok, tr.session)
	afterKm := kmOf(t, after)
	t.Logf("before late upload %.3f km, after %.3f km", before, afterKm)
	if !within(afterKm, 4, 0.05) || after["distance_recalculation_status"] != "done" {
		t.Fatalf("after the late upload: %.3f km status %v, want about 4 km and done", afterKm, after["distance_recalculation_status"])
	}

	checkin, err := time.Parse(time.RFC3339Nano, closed["checkin_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	checkout, err := time.Parse(time.RFC3339Nano, closed["checkout_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	rows := gpsRowCount(t, tr.session)
	early := fix{At: checkin.Add(-time.Minute), Lat: 51.5, Lon: -0.12, Acc: 5}
	late := fix{At: checkout.Add(30 * time.Second), Lat: 51.5, Lon: -0.12, Acc: 5}
	expectError(t, h.call("POST", "/locations/batch", tr.tok, pointsBody(tr.session, []fix{second[0], early})),
		http.StatusBadRequest, "VALIDATION_ERROR",
		"Cannot record locations: one or more points have recorded_at before the session start time.")
	expectError(t, h.call("POST", "/locations/batch", tr.tok, pointsBody(tr.session, []fix{second[0], late})),
		http.StatusBadRequest, "VALIDATION_ERROR",
		"Cannot record locations: one or more points have recorded_at after the session end time.")
	single := func(f fix) map[string]any {
		b := f.json()
		b["session_id"] = tr.session.String()
		return b
	}
	expectError(t, h.call("POST", "/locations", tr.tok, single(early)), http.StatusBadRequest, "VALIDATION_ERROR",
		"Cannot record location: recorded_at is before the session start time.")
	expectError(t, h.call("POST", "/locations", tr.tok, single(late)), http.StatusBadRequest, "VALIDATION_ERROR",
		"Cannot record location: recorded_at is after the session end time.")
	if n := gpsRowCount(t, tr.session); n != rows {
		t.Fatalf("rejected uploads changed the stored rows from %d to %d", rows, n)
	}
	if km := kmOf(t, mySession(t, h, tr.tok, tr.session)); km != afterKm {
		t.Fatalf("rejected uploads changed the distance from %.3f to %.3f km", afterKm, km)
	}

	// A single late fix within the session is accepted too, and recalculates: a 1 km detour at the end.
	last := second[len(second)-1]
	lat, lon := moveBy(last.Lat, last.Lon, 500, 0)
	detour := fix{At: last.At.Add(5 * time.Minute), Lat: lat, Lon: lon, Acc: 3}
	expect(t, h.call("POST", "/locations", tr.tok, single(detour)), http.StatusCreated)
	if km := kmOf(t, mySession(t, h, tr.tok, tr.session)); km < afterKm+0.4 || km > afterKm+0.6 {
		t.Fatalf("a late 500 m detour changed the distance from %.3f to %.3f km", afterKm, km)
	}
}

// Force check-out, recalculation, replay -------------------------------------------------------------------

func TestForceCheckOut_ClosesTheOpenSessionWithItsDistance(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	tr := newTracked(t, org, "Forgot", now.Add(-3*time.Hour))
	g := newTrack(10, 19.076, 72.8777, now.Add(-2*time.Hour)).drive(100, 5*time.Second, 2, 45, gaussian(2), 3)
	uploadFixes(t, h, tr, g.fixes, 100) // 1 km

	r := h.call("POST", "/admin/force-checkout", admin, map[string]any{"employee_id": tr.emp.ID.String()})
	expect(t, r, http.StatusOK)
	s := r.data()
	if s["id"] != tr.session.String() || s["employee_id"] != tr.emp.ID.String() || s["checkout_at"] == nil {
		t.Fatalf("force check-out answered %s", r.Raw)
	}
	if s["distance_recalculation_status"] != "done" || !within(kmOf(t, s), 1, 0.03) {
		t.Fatalf("force check-out answered status %v and %v km, want done and about 1 km: %s",
			s["distance_recalculation_status"], s["total_distance_km"], r.Raw)
	}
	if d, ok := s["total_duration_seconds"].(float64); !ok || d < 3*3600 || d > 3*3600+60 {
		t.Fatalf("duration %v, want about 3 h", s["total_duration_seconds"])
	}
	listed := mySession(t, h, tr.tok, tr.session)
	if listed["checkout_at"] == nil || kmOf(t, listed) != kmOf(t, s) {
		t.Fatalf("stored session %v differs from the answer %v", listed, s)
	}

	expectError(t, h.call("POST", "/admin/force-checkout", admin, map[string]any{"employee_id": tr.emp.ID.String()}),
		http.StatusNotFound, "NOT_FOUND", "No active session found for employee "+tr.emp.ID.String())

	foreign := newTracked(t, testfactory.NewOrg(t), "Elsewhere", now.Add(-time.Hour))
	expectError(t, h.call("POST", "/admin/force-checkout", admin, map[string]any{"employee_id": foreign.emp.ID.String()}),
		http.StatusNotFound, "NOT_FOUND", "No active session found for employee "+foreign.emp.ID.String())
	var open bool
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT checkout_at IS NULL FROM attendance_sessions WHERE id = $1`,
		foreign.session).Scan(&open); err != nil || !open {
		t.Fatalf("another organization's session was closed (open=%v, err=%v)", open, err)
	}

	r = h.call("POST", "/admin/force-checkout", admin, map[string]any{"employee_id": "not-a-uuid"})
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectField(t, r, "employee_id")
	r = h.call("POST", "/admin/force-checkout", admin, map[string]any{})
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectField(t, r, "employee_id")
	expectError(t, h.call("POST", "/admin/force-checkout", tr.tok, map[string]any{"employee_id": tr.emp.ID.String()}),
		http.StatusForbidden, "FORBIDDEN", "This action requires ADMIN role")
}

func TestRecalculate_OwnSessionsForEmployeesAnyOrgSessionForAdmins(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	tr := newTracked(t, org, "Walker", now.Add(-3*time.Hour))
	colleague := newTracked(t, org, "Colleague", now.Add(-3*time.Hour))
	// An open session with 2 km uploaded: nothing computed yet.
	g := newTrack(11, 35.6762, 139.6503, now.Add(-2*time.Hour)).drive(200, 5*time.Second, 2, 120, gaussian(2), 3)
	uploadFixes(t, h, tr, g.fixes, 100)
	if s := mySession(t, h, tr.tok, tr.session); s["distance_recalculation_status"] != "pending" || s["total_distance_km"] != nil {
		t.Fatalf("open session already computed: %v", s)
	}

	path := "/attendance/" + tr.session.String() + "/recalculate"
	r := h.call("POST", path, tr.tok, nil)
	expect(t, r, http.StatusOK)
	d := r.data()
	if d["session_id"] != tr.session.String() || d["distance_recalculation_status"] != "done" || !within(kmOf(t, d), 2, 0.03) {
		t.Fatalf("recalculate answered %s, want about 2 km and done", r.Raw)
	}
	if s := mySession(t, h, tr.tok, tr.session); kmOf(t, s) != kmOf(t, d) || s["checkout_at"] != nil {
		t.Fatalf("stored session %v does not match the recalculation %v (or was closed)", s, d)
	}

	expectError(t, h.call("POST", path, colleague.tok, nil), http.StatusNotFound, "NOT_FOUND", "Attendance session not found")

	r = h.call("POST", path, admin, nil)
	expect(t, r, http.StatusOK)
	if r.data()["session_id"] != tr.session.String() || kmOf(t, r.data()) != kmOf(t, d) {
		t.Fatalf("admin recalculate answered %s", r.Raw)
	}
	r = h.call("POST", "/attendance/"+colleague.session.String()+"/recalculate", admin, nil)
	expect(t, r, http.StatusOK)
	if kmOf(t, r.data()) != 0 {
		t.Fatalf("a session without fixes has %v km", r.data()["total_distance_km"])
	}

	foreignAdmin := testfactory.AdminToken(t, testfactory.NewOrg(t))
	expectError(t, h.call("POST", path, foreignAdmin, nil), http.StatusNotFound, "NOT_FOUND", "Attendance session not found")
	expectError(t, h.call("POST", "/attendance/"+uuid.NewString()+"/recalculate", admin, nil),
		http.StatusNotFound, "NOT_FOUND", "Attendance session not found")
	r = h.call("POST", "/attendance/not-a-uuid/recalculate", admin, nil)
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectField(t, r, "sessionId")

	// Neither the colleague nor the foreign admin changed the session.
	var status string
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT distance_recalculation_status FROM attendance_sessions WHERE id = $1`,
		tr.session).Scan(&status); err != nil || status != "done" {
		t.Fatalf("status %q err %v", status, err)
	}
}

// failedSummary returns a session's status and its summary's last error.
func failedSummary(t *testing.T, session uuid.UUID) (status string, lastError *string) {
	t.Helper()
	err := testfactory.Pool(t).QueryRow(t.Context(), `
		SELECT s.distance_recalculation_status, ss.last_error
		  FROM attendance_sessions s
		  LEFT JOIN session_summaries ss ON ss.organization_id = s.organization_id AND ss.session_id = s.id
		 WHERE s.id = $1`, session).Scan(&status, &lastError)
	if err != nil {
		t.Fatal(err)
	}
	return status, lastError
}

func TestReplay_RerunsTheOrganizationsFailedDistancesOnly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	pool := testfactory.Pool(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	tr := newTracked(t, org, "Broken", now.Add(-3*time.Hour))
	g := newTrack(12, -23.5505, -46.6333, now.Add(-2*time.Hour)).drive(100, 5*time.Second, 3, 200, gaussian(2), 3)
	uploadFixes(t, h, tr, g.fixes, 100) // 1.5 km

	// A failure inside the computation's transaction: the summary's write fails for this organization (a
	// trigger of the test's; the settings' ranges leave a DBA no way to break the arithmetic any more). The
	// check-out itself still succeeds; the distance is left 'failed' for replay.
	breaker := "test_break_" + strings.ReplaceAll(org.ID.String(), "-", "")
	if _, err := pool.Exec(t.Context(), fmt.Sprintf(`
		CREATE FUNCTION app.%[1]s() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.organization_id = '%[2]s' AND NEW.last_error IS NULL THEN
				RAISE EXCEPTION 'the distance computation broke';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER %[1]s BEFORE INSERT OR UPDATE ON session_summaries FOR EACH ROW EXECUTE FUNCTION app.%[1]s();`,
		breaker, org.ID)); err != nil {
		t.Fatal(err)
	}
	unbreak := func() {
		if _, err := pool.Exec(context.Background(), fmt.Sprintf(`DROP TRIGGER IF EXISTS %[1]s ON session_summaries;
			DROP FUNCTION IF EXISTS app.%[1]s()`, breaker)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(unbreak)
	r := h.call("POST", "/attendance/check-out", tr.tok, nil)
	expect(t, r, http.StatusOK)
	if r.data()["distance_recalculation_status"] != "failed" {
		t.Fatalf("check-out with a broken computation answered %s, want status failed", r.Raw)
	}
	status, lastErr := failedSummary(t, tr.session)
	if status != "failed" || lastErr == nil || *lastErr == "" {
		t.Fatalf("after the failure: status %q last_error %v", status, lastErr)
	}
	expectError(t, h.call("POST", "/attendance/"+tr.session.String()+"/recalculate", admin, nil),
		http.StatusUnprocessableEntity, "RECALCULATION_FAILED", "Distance recalculation failed; it is listed for replay")
	r = h.call("POST", "/admin/queues/replay-distance-dlq", admin, "{}")
	expect(t, r, http.StatusOK)
	if r.Body["replayed"] != 1.0 {
		t.Fatalf("replay while still broken answered %s, want 1 replayed", r.Raw)
	}
	if status, _ := failedSummary(t, tr.session); status != "failed" {
		t.Fatalf("replay of a still-broken computation left status %q, want failed", status)
	}

	// Another organization with a failure of its own (simulated as the owner).
	other := testfactory.NewOrg(t)
	otherSession := testfactory.ClosedSession(t, testfactory.NewEmployee(t, other, "Theirs"), now.Add(-5*time.Hour), now.Add(-4*time.Hour))
	if _, err := pool.Exec(t.Context(), `UPDATE attendance_sessions SET distance_recalculation_status = 'failed' WHERE id = $1`,
		otherSession); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `INSERT INTO session_summaries (organization_id, session_id, last_error) VALUES ($1, $2, 'simulated')
		ON CONFLICT (organization_id, session_id) DO UPDATE SET last_error = 'simulated'`,
		other.ID, otherSession); err != nil {
		t.Fatal(err)
	}

	// Repair it and replay: only this organization's session runs, and it is done.
	unbreak()
	r = h.call("POST", "/admin/queues/replay-distance-dlq", admin, "{}")
	expect(t, r, http.StatusOK)
	if r.Body["replayed"] != 1.0 || r.Body["limit"] != 100.0 {
		t.Fatalf("replay answered %s, want 1 replayed with the default limit 100", r.Raw)
	}
	status, lastErr = failedSummary(t, tr.session)
	if status != "done" || lastErr != nil {
		t.Fatalf("after replay: status %q last_error %v, want done and no error", status, lastErr)
	}
	if km := kmOf(t, mySession(t, h, tr.tok, tr.session)); !within(km, 1.5, 0.03) {
		t.Fatalf("replayed distance %.3f km, want about 1.5", km)
	}
	if status, lastErr := failedSummary(t, otherSession); status != "failed" || lastErr == nil || *lastErr != "simulated" {
		t.Fatalf("another organization's session was touched: status %q last_error %v", status, lastErr)
	}
	r = h.call("POST", "/admin/queues/replay-distance-dlq", admin, nil)
	expect(t, r, http.StatusOK)
	if r.Body["replayed"] != 0.0 {
		t.Fatalf("second replay answered %s, want 0 replayed", r.Raw)
	}

	// The other organization's admin replays its own.
	r = h.call("POST", "/admin/queues/replay-distance-dlq", testfactory.AdminToken(t, other), map[string]any{"limit": 5})
	expect(t, r, http.StatusOK)
	if r.Body["replayed"] != 1.0 || r.Body["limit"] != 5.0 {
		t.Fatalf("other organization's replay answered %s", r.Raw)
	}
	if status, lastErr := failedSummary(t, otherSession); status != "done" || lastErr != nil {
		t.Fatalf("other organization's session after its replay: status %q last_error %v", status, lastErr)
	}

	r = h.call("POST", "/admin/queues/replay-distance-dlq", admin, map[string]any{"limit": 0})
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectField(t, r, "limit")
	expectError(t, h.call("POST", "/admin/queues/replay-distance-dlq", tr.tok, "{}"),
		http.StatusForbidden, "FORBIDDEN", "This action requires ADMIN role")
}

// expectField fails unless the validation error's details name field.
func expectField(t *testing.T, r response, field string) {
	t.Helper()
	details, _ := r.Body["details"].(map[string]any)
	fields, _ := details["fields"].([]any)
	for _, f := range fields {
		if m, _ := f.(map[string]any); m["field"] == field {
			return
		}
	}
	t.Fatalf("details do not name field %q: %s", field, r.Raw)
}
