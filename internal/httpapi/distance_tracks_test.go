package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// Realistic tracks -------------------------------------------------------------------------------------------
//
// Each track type is generated for several seeds (a lucky one cannot pass alone); its distance must be
// within the type's bound of the true path's geodesic length on every seed, and its distance report must
// account for every fix and agree with the stored distance.

// trackSeeds are the seeds of every track type.
var trackSeeds = []uint64{1, 2, 3, 4, 5}

// downtownWalk: ~50 min at about 1 m/s on a street grid (a right-angle turn every 80-150 m, a wait at
// some crossings), fixes every 5-20 s reporting 20-60 m, an error drifting by 20-40 m over 2-5 minutes
// (multipath between buildings) plus 5 m of jitter.
func downtownWalk(seed uint64, start time.Time) *track {
	tr := newTrack(seed, 40.7128, -74.0060, start)
	nz := drift(uniform(tr.rng, 20, 40), time.Duration(uniform(tr.rng, 120, 300))*time.Second, 5)
	s := sampling{every: [2]time.Duration{5 * time.Second, 20 * time.Second}, acc: [2]float64{20, 60}}
	bearing := 90 * float64(tr.rng.IntN(4))
	for tr.at.Sub(start) < 50*time.Minute {
		tr.leg(uniform(tr.rng, 80, 150), uniform(tr.rng, 0.9, 1.2), bearing, s, nz)
		if tr.rng.Float64() < 0.4 {
			tr.pause(time.Duration(uniform(tr.rng, 5, 40)*float64(time.Second)), s, nz)
		}
		bearing += float64(180*tr.rng.IntN(2) - 90)
	}
	return tr.finish(s, nz)
}

// cityCycling: ~40 min at 4.5-5.5 m/s, a turn (or none) every 150-400 m, stopping 30-90 s at half the
// lights, fixes every 2-6 s reporting 5-15 m, an error drifting by 10 m over 90 s plus 3 m of jitter.
func cityCycling(seed uint64, start time.Time) *track {
	tr := newTrack(seed, 52.3676, 4.9041, start)
	nz := drift(10, 90*time.Second, 3)
	s := sampling{every: [2]time.Duration{2 * time.Second, 6 * time.Second}, acc: [2]float64{5, 15}}
	bearing := uniform(tr.rng, 0, 360)
	for tr.at.Sub(start) < 40*time.Minute {
		tr.leg(uniform(tr.rng, 150, 400), uniform(tr.rng, 4.5, 5.5), bearing, s, nz)
		if tr.rng.Float64() < 0.5 {
			tr.pause(time.Duration(uniform(tr.rng, 30, 90)*float64(time.Second)), s, nz)
		}
		bearing += []float64{90, -90, 0, 45, -45}[tr.rng.IntN(5)]
	}
	return tr.finish(s, nz)
}

// sparseHighway: ~70 min at 25-33 m/s on straights of 3-6 km joined by 3-12 degree bends, a fix every
// 30-60 s (0.75-2 km apart) reporting 5-10 m, 5 m of noise.
func sparseHighway(seed uint64, start time.Time) *track {
	tr := newTrack(seed, 48.0, 2.0, start)
	nz := gaussian(5)
	s := sampling{every: [2]time.Duration{30 * time.Second, 60 * time.Second}, acc: [2]float64{5, 10}}
	bearing := uniform(tr.rng, 0, 360)
	for tr.at.Sub(start) < 70*time.Minute {
		tr.leg(uniform(tr.rng, 3000, 6000), uniform(tr.rng, 25, 33), bearing, s, nz)
		bearing += uniform(tr.rng, 3, 12) * float64(1-2*tr.rng.IntN(2))
	}
	return tr.finish(s, nz)
}

// tunnelDrive: six legs of 0.5-1.5 km at 15-22 m/s turning 10-60 degrees, four minutes in a straight
// tunnel without a fix, six legs more; fixes every 1-5 s reporting 5-10 m, 5 m of noise.
func tunnelDrive(seed uint64, start time.Time) *track {
	tr := newTrack(seed, 45.9237, 6.8694, start)
	nz := gaussian(5)
	s := sampling{every: [2]time.Duration{time.Second, 5 * time.Second}, acc: [2]float64{5, 10}}
	bearing := uniform(tr.rng, 0, 360)
	legs := func() {
		for range 6 {
			tr.leg(uniform(tr.rng, 500, 1500), uniform(tr.rng, 15, 22), bearing, s, nz)
			bearing += uniform(tr.rng, 10, 60) * float64(1-2*tr.rng.IntN(2))
		}
	}
	legs()
	speed := uniform(tr.rng, 18, 22)
	tr.gap(speed*240, speed, bearing, s)
	legs()
	return tr.finish(s, nz)
}

// spoofedDay: a field day of ~5 h: parked 20-40 min, then five times a drive of 2-5 legs (0.5-3 km at
// 10-20 m/s, fixes every 2-6 s reporting 5-15 m, 6 m of noise) and a visit of 20-60 min (fixes every
// 20-60 s reporting 10-30 m, 10 m of noise); five fixes are spoofed 50-500 km away.
func spoofedDay(seed uint64, start time.Time) *track {
	tr := newTrack(seed, 34.0522, -118.2437, start)
	drive := sampling{every: [2]time.Duration{2 * time.Second, 6 * time.Second}, acc: [2]float64{5, 15}}
	park := sampling{every: [2]time.Duration{20 * time.Second, 60 * time.Second}, acc: [2]float64{10, 30}}
	visit := func(minLo, minHi float64) {
		tr.pause(time.Duration(uniform(tr.rng, minLo, minHi)*float64(time.Minute)), park, gaussian(10))
	}
	bearing := uniform(tr.rng, 0, 360)
	visit(20, 40)
	for range 5 {
		for range 2 + tr.rng.IntN(4) {
			tr.leg(uniform(tr.rng, 500, 3000), uniform(tr.rng, 10, 20), bearing, drive, gaussian(6))
			bearing += []float64{90, -90, 30, -30}[tr.rng.IntN(4)]
		}
		visit(20, 60)
	}
	tr.finish(park, gaussian(10))
	for range 5 {
		f := &tr.fixes[1+tr.rng.IntN(len(tr.fixes)-2)]
		d, b := uniform(tr.rng, 50_000, 500_000), uniform(tr.rng, 0, 2*math.Pi)
		f.Lat, f.Lon = moveBy(f.Lat, f.Lon, d*math.Cos(b), d*math.Sin(b))
	}
	return tr
}

// trackCase is a track type and the bound on its distance's relative error.
type trackCase struct {
	name  string
	gen   func(seed uint64, start time.Time) *track
	bound float64
}

// checkTrackCase drives every seed of c through the API (upload in batches, check-out) and checks the
// distance against the truth and the distance report against the session.
func checkTrackCase(t *testing.T, c trackCase) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	for _, seed := range trackSeeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			t.Parallel()
			now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
			tr := newTracked(t, org, c.name, now.Add(-10*time.Hour))
			g := c.gen(seed, now.Add(-9*time.Hour))
			truth := g.geodesicM(t)
			km := driveKm(t, h, tr, g.fixes)
			rep := checkDistanceReport(t, h, tr, km, len(g.fixes))
			rel := km*1000/truth - 1
			lambda := make([]float64, len(rep.Segments))
			for i, s := range rep.Segments {
				lambda[i] = s.NoiseScale
			}
			t.Logf("%s seed %d: true %.0f m, computed %.0f m, error %+.2f%% (naive %+.1f%%); %d fixes, %d stays, "+
				"dropped %v, noise scale %.3g", c.name, seed, truth, km*1000, 100*rel, 100*(rep.NaiveDistanceM/truth-1),
				len(g.fixes), len(rep.Stays), rep.Fixes.Dropped, lambda)
			if math.Abs(rel) > c.bound {
				t.Errorf("%s seed %d: %.3f km for %.3f km true, error %+.2f%%, want within %.0f%%",
					c.name, seed, km, truth/1000, 100*rel, 100*c.bound)
			}
		})
	}
}

func TestDistance_DowntownWalkUnderDriftingErrorIsWithinFivePercent(t *testing.T) {
	checkTrackCase(t, trackCase{"downtown walk", downtownWalk, 0.05})
}

func TestDistance_CyclingWithStopsAtLightsIsWithinThreePercent(t *testing.T) {
	checkTrackCase(t, trackCase{"city cycling", cityCycling, 0.03})
}

func TestDistance_SparseHighwayDriveIsWithinOnePercent(t *testing.T) {
	checkTrackCase(t, trackCase{"sparse highway", sparseHighway, 0.01})
}

func TestDistance_DriveThroughAFourMinuteTunnelIsWithinOnePercent(t *testing.T) {
	checkTrackCase(t, trackCase{"tunnel", tunnelDrive, 0.01})
}

func TestDistance_DayWithSpoofedFarAwayFixesIsWithinOnePercent(t *testing.T) {
	checkTrackCase(t, trackCase{"spoofed day", spoofedDay, 0.01})
}

// The distance report ----------------------------------------------------------------------------------------

// distanceReport is app.distance_report's answer.
type distanceReport struct {
	SessionID      string  `json:"session_id"`
	DistanceM      float64 `json:"distance_m"`
	DistanceKm     float64 `json:"distance_km"`
	NaiveDistanceM float64 `json:"naive_distance_m"`
	Fixes          struct {
		Received int            `json:"received"`
		Kept     int            `json:"kept"`
		Dropped  map[string]int `json:"dropped"`
	} `json:"fixes"`
	Stays []struct {
		Start     time.Time `json:"start"`
		End       time.Time `json:"end"`
		Latitude  float64   `json:"latitude"`
		Longitude float64   `json:"longitude"`
		Fixes     int       `json:"fixes"`
	} `json:"stays"`
	Track []struct {
		Latitude   float64   `json:"latitude"`
		Longitude  float64   `json:"longitude"`
		RecordedAt time.Time `json:"recorded_at"`
		Segment    int       `json:"segment"`
		Stay       *int      `json:"stay"`
	} `json:"track"`
	Segments []struct {
		Segment    int     `json:"segment"`
		Fixes      int     `json:"fixes"`
		NoiseScale float64 `json:"noise_scale"`
	} `json:"segments"`
	Settings map[string]any `json:"settings"`
	Model    map[string]any `json:"model"`
}

// dropReasons are the report's reasons for not using a fix.
var dropReasons = []string{"duplicate", "impossible_speed", "inaccurate", "inside_stay", "jitter"}

// distanceReportOf reads app.distance_report as the owner.
func distanceReportOf(t *testing.T, tr tracked) distanceReport {
	t.Helper()
	var raw []byte
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT app.distance_report($1, $2)`,
		tr.emp.OrgID, tr.session).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var rep distanceReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("report %s: %v", raw, err)
	}
	return rep
}

// checkDistanceReport checks the session's distance report against the session (its stored km, the
// distance function, the summary) and itself (every received fix kept or dropped for one reason, the
// track made of the kept fixes and the stays), and the API's report (the employee's own) against it, and
// returns it.
func checkDistanceReport(t *testing.T, h *harness, tr tracked, km float64, uploaded int) distanceReport {
	t.Helper()
	rep := distanceReportOf(t, tr)
	defer checkAPIDistanceReport(t, h, tr, rep, km)
	var distance, rounded float64
	var total, used, summaryUsed int
	if err := testfactory.Pool(t).QueryRow(t.Context(), `
		SELECT d.distance_m, round((d.distance_m / 1000)::numeric, 3)::float8, d.points_total, d.points_used, ss.points_used
		  FROM app.session_distance($1, $2) d
		  JOIN session_summaries ss ON ss.organization_id = $1 AND ss.session_id = $2`,
		tr.emp.OrgID, tr.session).Scan(&distance, &rounded, &total, &used, &summaryUsed); err != nil {
		t.Fatal(err)
	}
	if rep.SessionID != tr.session.String() || rep.DistanceM != distance || rep.DistanceKm != rounded || rounded != km {
		t.Fatalf("report: session %s, %v m, %v km; app.session_distance %v m (%v km); the session stores %v km",
			rep.SessionID, rep.DistanceM, rep.DistanceKm, distance, rounded, km)
	}
	f := rep.Fixes
	dropped := 0
	keys := make([]string, 0, len(f.Dropped))
	for k, n := range f.Dropped {
		keys = append(keys, k)
		dropped += n
	}
	sort.Strings(keys)
	if len(keys) != len(dropReasons) || !slices.Equal(keys, dropReasons) || f.Dropped["duplicate"] != 0 {
		t.Fatalf("dropped %v, want the reasons %v (and no duplicate: the key stores a fix once)", f.Dropped, dropReasons)
	}
	if f.Received != uploaded || total != uploaded || f.Kept+dropped != f.Received {
		t.Fatalf("received %d (session_distance %d), kept %d + dropped %d, uploaded %d: every fix must be kept or dropped once",
			f.Received, total, f.Kept, dropped, uploaded)
	}
	inStays, stays := 0, 0
	for _, s := range rep.Stays {
		inStays += s.Fixes
		if s.Fixes < 1 || s.End.Before(s.Start) {
			t.Fatalf("stay %+v", s)
		}
	}
	if inStays != f.Dropped["inside_stay"] || len(rep.Track) != f.Kept+len(rep.Stays) || len(rep.Track) != used ||
		used != summaryUsed {
		t.Fatalf("%d fixes in %d stays, inside_stay %d; track of %d points for %d kept fixes; points_used %d, summary %d",
			inStays, len(rep.Stays), f.Dropped["inside_stay"], len(rep.Track), f.Kept, used, summaryUsed)
	}
	segmentFixes := 0
	for i, s := range rep.Segments {
		segmentFixes += s.Fixes
		if s.Segment != i+1 || s.NoiseScale <= 0 {
			t.Fatalf("segments %+v", rep.Segments)
		}
	}
	if segmentFixes != f.Received-f.Dropped["inaccurate"]-f.Dropped["impossible_speed"] {
		t.Fatalf("segments hold %d fixes, want the %d after the accuracy and speed filters", segmentFixes,
			f.Received-f.Dropped["inaccurate"]-f.Dropped["impossible_speed"])
	}
	for i, p := range rep.Track {
		if i > 0 && (p.RecordedAt.Before(rep.Track[i-1].RecordedAt) || p.Segment < rep.Track[i-1].Segment ||
			p.Segment > rep.Track[i-1].Segment+1) {
			t.Fatalf("track point %d %+v after %+v", i, p, rep.Track[i-1])
		}
		if p.Stay != nil {
			stays++
			if *p.Stay != stays || rep.Stays[stays-1].Latitude != p.Latitude || !rep.Stays[stays-1].Start.Equal(p.RecordedAt) {
				t.Fatalf("track point %d %+v is stay %d %+v", i, p, stays, rep.Stays[stays-1])
			}
		}
	}
	if stays != len(rep.Stays) {
		t.Fatalf("the track holds %d of %d stays", stays, len(rep.Stays))
	}
	return rep
}

// apiDistanceReport is GET /attendance/{sessionId}/distance-report's answer.
type apiDistanceReport struct {
	distanceReport
	StoredDistanceKm *float64 `json:"stored_distance_km"`
	EmployeeID       string   `json:"employee_id"`
	Track            struct {
		Type        string            `json:"type"`
		Coordinates []json.RawMessage `json:"coordinates"`
	} `json:"track"`
}

// checkAPIDistanceReport checks that the API's report of the session (as its employee) is the SQL report
// of it with the session's stored figures and the track drawn as GeoJSON, every point of it unsimplified.
func checkAPIDistanceReport(t *testing.T, h *harness, tr tracked, rep distanceReport, km float64) {
	t.Helper()
	if t.Failed() {
		return
	}
	get := func(query string) apiDistanceReport {
		r := h.call("GET", "/attendance/"+tr.session.String()+"/distance-report"+query, tr.tok, nil)
		expect(t, r, http.StatusOK)
		var body struct{ Data apiDistanceReport }
		if err := json.Unmarshal(r.Raw, &body); err != nil {
			t.Fatal(err)
		}
		return body.Data
	}
	api := get("")
	sqlFixes, _ := json.Marshal(rep.Fixes)
	apiFixes, _ := json.Marshal(api.Fixes)
	if api.SessionID != tr.session.String() || api.EmployeeID != tr.emp.ID.String() || api.DistanceM != rep.DistanceM ||
		api.DistanceKm != rep.DistanceKm || api.StoredDistanceKm == nil || *api.StoredDistanceKm != km ||
		string(apiFixes) != string(sqlFixes) || len(api.Stays) != len(rep.Stays) || len(api.Segments) != len(rep.Segments) {
		t.Fatalf("the API's report %+v (fixes %s), want the SQL report's %v m (fixes %s) and the stored %v km",
			api, apiFixes, rep.DistanceM, sqlFixes, km)
	}
	segments := map[int]int{}
	for _, p := range rep.Track {
		segments[p.Segment]++
	}
	switch {
	case len(segments) > 1:
		if api.Track.Type != "MultiLineString" || len(api.Track.Coordinates) != len(segments) {
			t.Fatalf("a track of %d segments drawn as %s of %d lines", len(segments), api.Track.Type, len(api.Track.Coordinates))
		}
	case api.Track.Type != "LineString" || len(api.Track.Coordinates) != max(len(rep.Track), min(len(rep.Track), 1)*2):
		t.Fatalf("a track of %d points drawn as %s of %d positions", len(rep.Track), api.Track.Type, len(api.Track.Coordinates))
	case len(rep.Track) > 2:
		simple := get("?simplify=25")
		if n := len(simple.Track.Coordinates); n < 2 || n > len(rep.Track) || simple.DistanceM != rep.DistanceM {
			t.Fatalf("simplified to 25 m: %d of %d positions, distance %v (want %v)", n, len(rep.Track), simple.DistanceM, rep.DistanceM)
		}
	}
}

// One track with every reason to drop a fix: its report counts each, finds the stay where the phone stood,
// restarts the track where it jumped for good, and is computed as the caller (row-level security).
func TestDistanceReport_AccountsForEveryFixByReason(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	now := time.Now().Truncate(time.Millisecond) // phones report milliseconds
	tr := newTracked(t, org, "Reasons", now.Add(-3*time.Hour))
	colleague := newTracked(t, org, "Colleague", now.Add(-3*time.Hour))
	// Five minutes standing (a stay), 1 km, 40 s at a red light (jitter), 1 km more.
	g := newTrack(40, 50.0755, 14.4378, now.Add(-2*time.Hour)).
		stand(61, 5*time.Second, gaussian(8), 10).
		drive(20, 5*time.Second, 10, 45, gaussian(3), 5).
		stand(8, 5*time.Second, gaussian(3), 5).
		drive(20, 5*time.Second, 10, 135, gaussian(3), 5)
	standAt := g.fixes[0]
	fixes := append([]fix(nil), g.fixes...)
	for _, i := range []int{70, 75, 90} { // reported worse than max_accuracy_m (100 m)
		fixes[i].Acc = 150
	}
	for _, i := range []int{80, 95} { // single fixes 30 km away
		fixes[i].Lat, fixes[i].Lon = moveBy(fixes[i].Lat, fixes[i].Lon, 30_000, 0)
	}
	// The phone then reports from 50 km away, consistently: four impossible fixes, then a new segment.
	last := fixes[len(fixes)-1]
	for i := range 6 {
		lat, lon := moveBy(last.Lat, last.Lon, 50_000, float64(10*i))
		fixes = append(fixes, fix{At: last.At.Add(time.Duration(i+1) * 5 * time.Second), Lat: lat, Lon: lon, Acc: 5,
			Seq: last.Seq + i + 1})
	}
	km := driveKm(t, h, tr, fixes)
	rep := checkDistanceReport(t, h, tr, km, len(fixes))
	t.Logf("%.3f km; fixes %+v; %d stays %+v; segments %+v", km, rep.Fixes, len(rep.Stays), rep.Stays, rep.Segments)

	d := rep.Fixes.Dropped
	if d["inaccurate"] != 3 || d["impossible_speed"] != 2+4 || d["jitter"] < 1 || d["inside_stay"] < 55 {
		t.Fatalf("dropped %v, want 3 inaccurate, 6 impossible_speed, the stand inside a stay and the light as jitter", d)
	}
	if len(rep.Segments) != 2 || rep.Segments[1].Fixes != 2 || rep.Track[len(rep.Track)-1].Segment != 2 {
		t.Fatalf("segments %+v, want the track restarted for the last two fixes", rep.Segments)
	}
	if len(rep.Stays) != 1 {
		t.Fatalf("stays %+v, want the first five minutes", rep.Stays)
	}
	s := rep.Stays[0]
	lat, lon := g.path[0][0], g.path[0][1]
	if off := math.Hypot((s.Latitude-lat)*metresPerDegree, (s.Longitude-lon)*metresPerDegree*math.Cos(lat*math.Pi/180)); off > 5 ||
		!s.Start.Equal(standAt.At) || s.End.Before(g.fixes[60].At) || s.End.After(g.fixes[62].At) {
		t.Fatalf("stay %+v, want it %.5f %.5f (%.1f m off) from %v to the departure %v", s, lat, lon, off, standAt.At, g.fixes[60].At)
	}
	if truth := g.geodesicM(t); !within(km*1000, truth, 0.03) {
		t.Fatalf("%.3f km, want the %.3f km driven within 3%%", km, truth/1000)
	}
	if rep.Settings["max_accuracy_m"] != 100.0 || rep.Settings["stay_min_seconds"] != 120.0 || rep.Model["still_speed_mps"] == nil {
		t.Fatalf("settings %v, model %v", rep.Settings, rep.Model)
	}

	// As the API role: the session's employee gets the same report; a colleague sees none of its fixes.
	reportAs := func(c db.Claims) distanceReport {
		var raw []byte
		err := db.InTx(t.Context(), testfactory.Pool(t), c, db.TxOptions{ReadOnly: true}, func(tx db.DBTX) error {
			return tx.QueryRow(t.Context(), `SELECT app.distance_report($1, $2)`, org.ID, tr.session).Scan(&raw)
		})
		if err != nil {
			t.Fatal(err)
		}
		var r distanceReport
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if own := reportAs(testfactory.EmployeeClaims(tr.emp)); own.DistanceM != rep.DistanceM || own.Fixes.Received != len(fixes) {
		t.Fatalf("the employee's own report: %v m of %d fixes, want %v m of %d", own.DistanceM, own.Fixes.Received, rep.DistanceM, len(fixes))
	}
	if other := reportAs(testfactory.EmployeeClaims(colleague.emp)); other.Fixes.Received != 0 || other.DistanceM != 0 || len(other.Track) != 0 {
		t.Fatalf("a colleague's report of the session: %+v, want no fixes", other.Fixes)
	}
}
