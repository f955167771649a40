package httpapi

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// singleBody is POST /locations's body for f.
func singleBody(session uuid.UUID, f fix) map[string]any {
	b := f.json()
	b["session_id"] = session.String()
	return b
}

func TestLocations_SinglePointIsStoredOnceAndFutureTimesAreRejected(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	tr := newTracked(t, testfactory.NewOrg(t), "Pinger", now.Add(-time.Hour))
	f := fix{At: now.Add(-10 * time.Minute).Truncate(time.Millisecond), Lat: 12.9716, Lon: 77.5946, Acc: 7.5, Seq: 3}

	r := h.call("POST", "/locations", tr.tok, singleBody(tr.session, f))
	expect(t, r, http.StatusCreated)
	row := r.data()
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(row["recorded_at"]))
	if err != nil || !at.Equal(f.At) {
		t.Fatalf("recorded_at %v (%v), want %v", row["recorded_at"], err, f.At)
	}
	if _, err := uuid.Parse(fmt.Sprint(row["id"])); err != nil || row["session_id"] != tr.session.String() ||
		row["employee_id"] != tr.emp.ID.String() || row["organization_id"] != tr.emp.OrgID.String() ||
		row["latitude"] != f.Lat || row["longitude"] != f.Lon || row["accuracy"] != f.Acc || row["sequence_number"] != 3.0 {
		t.Fatalf("stored row %s does not match the fix %+v", r.Raw, f)
	}

	again := h.call("POST", "/locations", tr.tok, singleBody(tr.session, f))
	expect(t, again, http.StatusOK)
	if again.data()["id"] != row["id"] || again.data()["latitude"] != f.Lat {
		t.Fatalf("repeated fix answered %s, want the stored row %v", again.Raw, row)
	}
	// The same time with another position is the same fix: the first upload wins.
	moved := f
	moved.Lat += 0.01
	again = h.call("POST", "/locations", tr.tok, singleBody(tr.session, moved))
	expect(t, again, http.StatusOK)
	if again.data()["id"] != row["id"] || again.data()["latitude"] != f.Lat {
		t.Fatalf("fix with the same recorded_at answered %s, want the stored row %v", again.Raw, row)
	}

	// sequence_number is optional.
	body := singleBody(tr.session, fix{At: now.Add(-5 * time.Minute), Lat: 12.98, Lon: 77.6, Acc: 4})
	delete(body, "sequence_number")
	r = h.call("POST", "/locations", tr.tok, body)
	expect(t, r, http.StatusCreated)
	if v, ok := r.data()["sequence_number"]; !ok || v != nil {
		t.Fatalf("sequence_number %v, want null", v)
	}
	// A clock a minute ahead is tolerated; an hour is not.
	expect(t, h.call("POST", "/locations", tr.tok, singleBody(tr.session, fix{At: now.Add(time.Minute), Lat: 12.99, Lon: 77.6, Acc: 4})),
		http.StatusCreated)
	future := fix{At: now.Add(time.Hour), Lat: 12.99, Lon: 77.6, Acc: 4}
	expectError(t, h.call("POST", "/locations", tr.tok, singleBody(tr.session, future)),
		http.StatusBadRequest, "VALIDATION_ERROR", "recorded_at cannot be more than 2 minutes in the future")
	expectError(t, h.call("POST", "/locations/batch", tr.tok, pointsBody(tr.session, []fix{future})),
		http.StatusBadRequest, "VALIDATION_ERROR", "recorded_at cannot be more than 2 minutes in the future")
	if n := gpsRowCount(t, tr.session); n != 3 {
		t.Fatalf("%d rows stored, want 3", n)
	}

	admin := testfactory.AdminToken(t, testfactory.NewOrg(t))
	expectError(t, h.call("POST", "/locations", admin, singleBody(tr.session, f)),
		http.StatusForbidden, "FORBIDDEN", "This action requires EMPLOYEE role")
}

func TestLocations_BadInputIsA400NamingTheFieldAndWritesNothing(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	org := testfactory.NewOrg(t)
	tr := newTracked(t, org, "Sender", now.Add(-time.Hour))
	colleague := newTracked(t, org, "Colleague", now.Add(-time.Hour))
	foreign := newTracked(t, testfactory.NewOrg(t), "Foreigner", now.Add(-time.Hour))
	at := now.Add(-time.Minute).UTC().Format(time.RFC3339)
	point := func(fields string) string {
		return `{"latitude":10,"longitude":20,"accuracy":5,"recorded_at":"` + at + `"` + fields + `}`
	}
	without := func(name string) string {
		s := strings.Replace(point(""), `"`+name+`":`, `"unused_`+name+`":`, 1)
		return s
	}
	batch := func(session string, points ...string) string {
		return `{"session_id":"` + session + `","points":[` + strings.Join(points, ",") + `]}`
	}
	single := func(session, pt string) string {
		return `{"session_id":"` + session + `",` + strings.TrimPrefix(pt, "{")
	}
	s := tr.session.String()
	many := make([]string, 101)
	for i := range many {
		many[i] = strings.Replace(point(""), at, now.Add(-time.Duration(i+1)*time.Second).UTC().Format(time.RFC3339), 1)
	}

	cases := []struct {
		name, path, body string
		field            string // "" when the body is not JSON, so no field can be named
	}{
		{"NaN latitude", "/locations/batch", batch(s, point(`,"latitude":NaN`)), ""},
		{"overflowing latitude", "/locations/batch", batch(s, strings.Replace(point(""), `"latitude":10`, `"latitude":1e400`, 1)), "points.0.latitude"},
		{"string latitude", "/locations/batch", batch(s, strings.Replace(point(""), `"latitude":10`, `"latitude":"10"`, 1)), "points.0.latitude"},
		{"latitude 91", "/locations/batch", batch(s, strings.Replace(point(""), `"latitude":10`, `"latitude":91`, 1)), "points.0.latitude"},
		{"longitude -181 in the second point", "/locations/batch", batch(s, point(""), strings.Replace(point(""), `"longitude":20`, `"longitude":-181`, 1)), "points.1.longitude"},
		{"missing accuracy", "/locations/batch", batch(s, without("accuracy")), "points.0.accuracy"},
		{"negative accuracy", "/locations/batch", batch(s, strings.Replace(point(""), `"accuracy":5`, `"accuracy":-1`, 1)), "points.0.accuracy"},
		{"missing recorded_at", "/locations/batch", batch(s, without("recorded_at")), "points.0.recorded_at"},
		{"recorded_at not a date", "/locations/batch", batch(s, strings.Replace(point(""), at, "yesterday", 1)), "points.0.recorded_at"},
		{"negative sequence_number", "/locations/batch", batch(s, point(`,"sequence_number":-1`)), "points.0.sequence_number"},
		{"101 points", "/locations/batch", batch(s, many...), "points"},
		{"0 points", "/locations/batch", batch(s), "points"},
		{"points missing", "/locations/batch", `{"session_id":"` + s + `"}`, "points"},
		{"non-UUID session_id", "/locations/batch", batch("abc", point("")), "session_id"},
		{"session_id missing", "/locations/batch", `{"points":[` + point("") + `]}`, "session_id"},
		{"single: NaN latitude", "/locations", single(s, point(`,"latitude":NaN`)), ""},
		{"single: string latitude", "/locations", single(s, strings.Replace(point(""), `"latitude":10`, `"latitude":"ten"`, 1)), "latitude"},
		{"single: latitude 91", "/locations", single(s, strings.Replace(point(""), `"latitude":10`, `"latitude":91`, 1)), "latitude"},
		{"single: missing accuracy", "/locations", single(s, without("accuracy")), "accuracy"},
		{"single: negative accuracy", "/locations", single(s, strings.Replace(point(""), `"accuracy":5`, `"accuracy":-0.5`, 1)), "accuracy"},
		{"single: non-UUID session_id", "/locations", single("123", point("")), "session_id"},
		{"single: session_id missing", "/locations", point(""), "session_id"},
	}
	for _, c := range cases {
		r := h.call("POST", c.path, tr.tok, c.body)
		if r.Status != http.StatusBadRequest || r.Body["code"] != "VALIDATION_ERROR" {
			t.Errorf("%s: %d %s, want 400 VALIDATION_ERROR", c.name, r.Status, r.Raw)
			continue
		}
		if c.field == "" {
			continue
		}
		details, _ := r.Body["details"].(map[string]any)
		fields, _ := details["fields"].([]any)
		named := false
		for _, f := range fields {
			if m, _ := f.(map[string]any); m["field"] == c.field {
				named = true
			}
		}
		if !named || !strings.Contains(fmt.Sprint(r.Body["error"]), c.field) {
			t.Errorf("%s: %s does not name field %q", c.name, r.Raw, c.field)
		}
	}

	// Sessions the caller may not write to: another organization's, a colleague's, one that does not exist.
	f := fix{At: now.Add(-time.Minute), Lat: 10, Lon: 20, Acc: 5}
	for name, session := range map[string]uuid.UUID{
		"another organization's session": foreign.session,
		"a colleague's session":          colleague.session,
		"a session that does not exist":  uuid.New(),
	} {
		expectError(t, h.call("POST", "/locations/batch", tr.tok, pointsBody(session, []fix{f, {At: f.At.Add(time.Second), Lat: 10, Lon: 20, Acc: 5}})),
			http.StatusBadRequest, "VALIDATION_ERROR", "Cannot record locations: invalid or closed attendance session.")
		expectError(t, h.call("POST", "/locations", tr.tok, singleBody(session, f)),
			http.StatusBadRequest, "VALIDATION_ERROR", "Cannot record location: invalid or closed attendance session.")
		if n := gpsRowCount(t, session); n != 0 {
			t.Errorf("%s: %d rows written", name, n)
		}
	}
	if n := gpsRowCount(t, tr.session); n != 0 {
		t.Fatalf("bad input wrote %d rows", n)
	}
	// The same fix is fine for the caller's own session: the rejections above were about the session.
	expect(t, h.call("POST", "/locations", tr.tok, singleBody(tr.session, f)), http.StatusCreated)
}

func TestLocations_BatchIsAllOrNothing(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	checkin := now.Add(-2 * time.Hour)
	tr := newTracked(t, testfactory.NewOrg(t), "Atomic", checkin)
	g := newTrack(20, 59.3293, 18.0686, now.Add(-time.Hour)).drive(9, 5*time.Second, 10, 0, gaussian(3), 5)

	bad := []fix{
		{At: checkin.Add(-time.Second), Lat: 59.33, Lon: 18.07, Acc: 5}, // before check-in
		{At: now.Add(10 * time.Minute), Lat: 59.33, Lon: 18.07, Acc: 5}, // too far in the future
	}
	msgs := []string{
		"Cannot record locations: one or more points have recorded_at before the session start time.",
		"recorded_at cannot be more than 2 minutes in the future",
	}
	for i, b := range bad {
		pts := append(append([]fix(nil), g.fixes...), b)
		expectError(t, h.call("POST", "/locations/batch", tr.tok, pointsBody(tr.session, pts)),
			http.StatusBadRequest, "VALIDATION_ERROR", msgs[i])
		if n := gpsRowCount(t, tr.session); n != 0 {
			t.Fatalf("a rejected batch (%s) wrote %d rows", msgs[i], n)
		}
	}
	// A schema error in the last point rejects the batch before it reaches the database.
	body := pointsBody(tr.session, g.fixes)
	pts := body["points"].([]map[string]any)
	pts[len(pts)-1]["latitude"] = 95
	r := h.call("POST", "/locations/batch", tr.tok, body)
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectField(t, r, fmt.Sprintf("points.%d.latitude", len(pts)-1))
	if n := gpsRowCount(t, tr.session); n != 0 {
		t.Fatalf("a rejected batch wrote %d rows", n)
	}

	if n := sendBatch(t, h, tr, g.fixes); n != len(g.fixes) || gpsRowCount(t, tr.session) != len(g.fixes) {
		t.Fatalf("the valid fixes alone inserted %d, stored %d, want %d", n, gpsRowCount(t, tr.session), len(g.fixes))
	}
}

// recordedTimes reads recorded_at of a route answer.
func recordedTimes(t *testing.T, r response) []time.Time {
	t.Helper()
	out := make([]time.Time, len(r.list()))
	for i, p := range r.list() {
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(p["recorded_at"]))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = at
	}
	return out
}

func TestRoute_ListsFixesInTimeOrderForOwnerAndAdminOnly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	tr := newTracked(t, org, "Router", now.Add(-5*time.Hour))
	colleague := newTracked(t, org, "Colleague", now.Add(-5*time.Hour))
	// 1,000 fixes, 50 m apart with 1 m noise: east, north, east, south, corners at fixes 250, 500 and 750.
	g := newTrack(21, 41.9028, 12.4964, now.Add(-4*time.Hour)).
		drive(250, 5*time.Second, 10, 90, gaussian(1), 3).
		drive(250, 5*time.Second, 10, 0, gaussian(1), 3).
		drive(250, 5*time.Second, 10, 90, gaussian(1), 3).
		drive(249, 5*time.Second, 10, 180, gaussian(1), 3)
	if len(g.fixes) != 1000 {
		t.Fatalf("generator made %d fixes", len(g.fixes))
	}
	shuffled := append([]fix(nil), g.fixes...)
	rand.New(rand.NewPCG(22, 23)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	uploadFixes(t, h, tr, shuffled, 100)

	checkAll := func(r response) {
		t.Helper()
		expect(t, r, http.StatusOK)
		times := recordedTimes(t, r)
		if len(times) != len(g.fixes) {
			t.Fatalf("route has %d fixes, want %d", len(times), len(g.fixes))
		}
		for i, at := range times {
			if !at.Equal(g.fixes[i].At) || r.list()[i]["latitude"] != g.fixes[i].Lat {
				t.Fatalf("route fix %d at %v, want fix %d at %v in recorded_at order", i, at, i, g.fixes[i].At)
			}
		}
	}
	q := "?sessionId=" + tr.session.String()
	checkAll(h.call("GET", "/locations/my-route"+q, tr.tok, nil))
	checkAll(h.call("GET", "/locations/my-route?session_id="+tr.session.String(), tr.tok, nil))
	checkAll(h.call("GET", "/admin/sessions/"+tr.session.String()+"/locations", admin, nil))

	checkSimplified := func(r response) {
		t.Helper()
		expect(t, r, http.StatusOK)
		times := recordedTimes(t, r)
		t.Logf("simplify=10 kept %d of %d fixes", len(times), len(g.fixes))
		if len(times) < 5 || len(times) >= 50 {
			t.Fatalf("simplified route has %d fixes, want the 2 ends and 3 corners and far fewer than 50", len(times))
		}
		if !times[0].Equal(g.fixes[0].At) || !times[len(times)-1].Equal(g.fixes[len(g.fixes)-1].At) {
			t.Fatalf("simplified route %v lost the first or last fix", times)
		}
		kept := map[time.Time]bool{}
		for i, at := range times {
			if i > 0 && !at.After(times[i-1]) {
				t.Fatalf("simplified route not in recorded_at order: %v", times)
			}
			kept[at.UTC()] = true
		}
		for _, corner := range []int{250, 500, 750} {
			if !kept[g.fixes[corner].At.UTC()] {
				t.Fatalf("simplified route %v lost the corner fix %d", times, corner)
			}
		}
	}
	checkSimplified(h.call("GET", "/locations/my-route"+q+"&simplify=10", tr.tok, nil))
	checkSimplified(h.call("GET", "/admin/sessions/"+tr.session.String()+"/locations?simplify=10", admin, nil))

	expectError(t, h.call("GET", "/locations/my-route", tr.tok, nil), http.StatusBadRequest, "VALIDATION_ERROR", "sessionId is required")
	r := h.call("GET", "/locations/my-route"+q+"&simplify=-1", tr.tok, nil)
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectField(t, r, "simplify")
	// A session that is not one of the caller's has no fixes of the caller's, whatever its id: the
	// dashboard asks for its placeholder session right after a check-in (issue 8).
	for _, other := range []string{"optimistic-1764580000000", "abc", uuid.NewString(), tr.session.String()} {
		tok := tr.tok
		if other == tr.session.String() {
			tok = colleague.tok
		}
		r = h.call("GET", "/locations/my-route?sessionId="+other, tok, nil)
		expect(t, r, http.StatusOK)
		if len(r.list()) != 0 {
			t.Fatalf("another's session %s answered %s", other, r.Raw)
		}
	}

	// A session without fixes is an empty route.
	r = h.call("GET", "/locations/my-route?sessionId="+colleague.session.String(), colleague.tok, nil)
	expect(t, r, http.StatusOK)
	if len(r.list()) != 0 {
		t.Fatalf("empty session's route %s", r.Raw)
	}
	r = h.call("GET", "/locations/my-route?simplify=10&sessionId="+colleague.session.String(), colleague.tok, nil)
	expect(t, r, http.StatusOK)
	if len(r.list()) != 0 {
		t.Fatalf("empty session's simplified route %s", r.Raw)
	}

	foreignAdmin := testfactory.AdminToken(t, testfactory.NewOrg(t))
	expectError(t, h.call("GET", "/admin/sessions/"+tr.session.String()+"/locations", foreignAdmin, nil),
		http.StatusNotFound, "NOT_FOUND", "Attendance session not found")
	expectError(t, h.call("GET", "/admin/sessions/"+tr.session.String()+"/locations", tr.tok, nil),
		http.StatusForbidden, "FORBIDDEN", "This action requires ADMIN role")
	r = h.call("GET", "/admin/sessions/nope/locations", admin, nil)
	expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectField(t, r, "id")
}

func TestMap_ShowsEachActiveOrRecentEmployeesLatestFixOfOwnOrgOnly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)

	// Active: the latest fix is uploaded first, older ones after it.
	active := newTracked(t, org, "Active", now.Add(-3*time.Hour))
	g := newTrack(30, 48.8566, 2.3522, now.Add(-2*time.Hour)).drive(20, 5*time.Second, 10, 10, gaussian(3), 5)
	latest := g.fixes[len(g.fixes)-1]
	expect(t, h.call("POST", "/locations", active.tok, singleBody(active.session, latest)), http.StatusCreated)
	uploadFixes(t, h, active, g.fixes[:len(g.fixes)-1], 100)

	// Recent: closed two hours ago, with a fix uploaded late.
	recentEmp := testfactory.NewEmployee(t, org, "Recent")
	recent := tracked{emp: recentEmp, tok: testfactory.EmployeeToken(t, recentEmp),
		session: testfactory.ClosedSession(t, recentEmp, now.Add(-5*time.Hour), now.Add(-2*time.Hour))}
	recentFix := fix{At: now.Add(-3 * time.Hour), Lat: 48.86, Lon: 2.34, Acc: 5}
	expect(t, h.call("POST", "/locations", recent.tok, singleBody(recent.session, recentFix)), http.StatusCreated)

	// Inactive: the latest session closed 30 hours ago, with fixes.
	oldEmp := testfactory.NewEmployee(t, org, "Inactive")
	old := tracked{emp: oldEmp, tok: testfactory.EmployeeToken(t, oldEmp),
		session: testfactory.ClosedSession(t, oldEmp, now.Add(-40*time.Hour), now.Add(-30*time.Hour))}
	expect(t, h.call("POST", "/locations", old.tok, singleBody(old.session, fix{At: now.Add(-35 * time.Hour), Lat: 48.87, Lon: 2.33, Acc: 5})),
		http.StatusCreated)

	// Another organization's active employee with a fix.
	foreign := newTracked(t, testfactory.NewOrg(t), "Foreign", now.Add(-time.Hour))
	expect(t, h.call("POST", "/locations", foreign.tok, singleBody(foreign.session, fix{At: now.Add(-time.Minute), Lat: 48.85, Lon: 2.35, Acc: 5})),
		http.StatusCreated)

	r := h.call("GET", "/admin/monitoring/map", admin, nil)
	expect(t, r, http.StatusOK)
	markers := map[string]map[string]any{}
	for _, m := range r.list() {
		markers[fmt.Sprint(m["employeeId"])] = m
	}
	if len(markers) != 2 || markers[active.emp.ID.String()] == nil || markers[recent.emp.ID.String()] == nil {
		t.Fatalf("map %s, want exactly the active and the recent employee", r.Raw)
	}
	check := func(tr tracked, status string, want fix) {
		t.Helper()
		m := markers[tr.emp.ID.String()]
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["recordedAt"]))
		if err != nil || !at.Equal(want.At) || m["latitude"] != want.Lat || m["longitude"] != want.Lon ||
			m["status"] != status || m["sessionId"] != tr.session.String() ||
			m["employeeName"] != tr.emp.Name || m["employeeCode"] != tr.emp.Code {
			t.Fatalf("marker %v, want %s at %+v of session %s", m, status, want, tr.session)
		}
	}
	check(active, "ACTIVE", latest)
	check(recent, "RECENT", recentFix)

	expectError(t, h.call("GET", "/admin/monitoring/map", active.tok, nil), http.StatusForbidden, "FORBIDDEN", "This action requires ADMIN role")
}
