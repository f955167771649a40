package httpapi

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// gpsValues are values for each field of a fix, valid and not, in the forms phones and attackers send.
var gpsValues = map[string][]string{
	"latitude": {`12.9716`, `-90`, `90`, `90.0000001`, `-90.5`, `0`, `-0`, `1e1`, `1E-7`, `1.5e+1`, `1e400`, `1e-400`,
		`01`, `.5`, `+1`, `1.`, `"12"`, `null`, `true`, `[]`},
	"longitude": {`77.5946`, `180`, `-180`, `180.1`, `-181`, `0.000001`, `7.75946e1`, `"77"`, `null`},
	"accuracy":  {`5.5`, `0`, `-0`, `-0.1`, `1e308`, `1e309`, `3`, `"5"`, `null`, `{}`},
	"recorded_at": {`"2026-03-01T09:30:00.123Z"`, `"2026-03-01T09:30:00+05:30"`, `"2026-03-01T09:30:00-00:00"`,
		`"2026-03-01T09:30:00"`, `"2026-02-30T09:30:00Z"`, `"2026-03-01T09:30:60Z"`, `"2026-03-01t09:30:00z"`,
		`"2026-03-01T24:00:00Z"`, `"0000-01-01T00:00:00Z"`, `"2026-03-01T09:30:00.123456789012Z"`,
		`"2026-03-01 09:30:00Z"`, `"2026-03-01T09:30:00\u005a"`, `12`, `null`},
	"sequence_number": {`1`, `0`, `2147483647`, `2147483648`, `-1`, `-0`, `1.0`, `1e3`, `41`, `"1"`, `null`,
		`00`},
	"session_id": {`"` + fuzzID + `"`, `"` + strings.ToUpper(fuzzID) + `"`, `"{` + fuzzID + `}"`,
		`"urn:uuid:` + fuzzID + `"`, `"3f1c2a9e8b7d4e6fa5c41b2d3e4f5a6b"`, `"3f1c2a9e-8b7d-4e6f-a5c4-1b2d3e4f5a6"`,
		`"3f1c2a9e-8b7d-4e6f-a5c4-1b2d3e4f5a6g"`, `"3f1c2a9e-8b7d-4e6f-a5c4-1b2d3e4f5a6\u0062"`, `7`, `null`},
}

var gpsPointFields = []string{"latitude", "longitude", "accuracy", "recorded_at", "sequence_number"}

// gpsObject writes an object of the given fields, each with its value number pick[field] (the first value
// when absent); fields listed in drop are left out, extra members are appended as they are.
func gpsObjectJSON(fields []string, pick map[string]int, drop map[string]bool, extra ...string) string {
	var parts []string
	for _, f := range fields {
		if drop[f] {
			continue
		}
		parts = append(parts, `"`+f+`":`+gpsValues[f][pick[f]%len(gpsValues[f])])
	}
	return "{" + strings.Join(append(parts, extra...), ",") + "}"
}

// gpsCorpus is a POST /locations and a POST /locations/batch body per case: each field given each of its
// values, each field left out, and odd shapes of JSON.
func gpsCorpus() (single, batch []string) {
	singleFields := append([]string{"session_id"}, gpsPointFields...)
	single = append(single, gpsObjectJSON(singleFields, nil, nil))
	for _, f := range singleFields {
		for i := range gpsValues[f] {
			single = append(single, gpsObjectJSON(singleFields, map[string]int{f: i}, nil))
		}
		single = append(single, gpsObjectJSON(singleFields, nil, map[string]bool{f: true}))
	}
	valid := gpsObjectJSON(singleFields, nil, nil)
	single = append(single,
		" \n\t"+valid+"\r\n ", valid+"x", valid+"{}", "", "{}", "[]", "null", `{"session_id":"`+fuzzID+`"}`,
		strings.Replace(valid, `"latitude"`, `"Latitude"`, 1), strings.Replace(valid, `"latitude"`, `"lat\u0069tude"`, 1),
		gpsObjectJSON(singleFields, nil, nil, `"latitude":1`), gpsObjectJSON(singleFields, nil, nil, `"note":"x"`),
		gpsObjectJSON(singleFields, nil, nil, `"points":[]`), strings.Replace(valid, ",", " , ", -1),
		strings.Replace(valid, "}", ",}", 1), strings.Replace(valid, ":", ": ", -1), valid[:len(valid)-1])

	point := func(pick map[string]int, drop map[string]bool) string {
		return gpsObjectJSON(gpsPointFields, pick, drop)
	}
	wrap := func(points ...string) string {
		return `{"session_id":"` + fuzzID + `","points":[` + strings.Join(points, ",") + `]}`
	}
	batch = append(batch, wrap(point(nil, nil)), wrap(), `{"session_id":"`+fuzzID+`"}`, `{"points":[`+point(nil, nil)+`]}`,
		wrap(point(nil, nil))+" ", wrap(point(nil, nil), "null"), wrap(point(nil, nil), ""),
		`{"session_id":"`+fuzzID+`","points":[`+point(nil, nil)+`,]}`, `{"session_id":"`+fuzzID+`","points":{}}`,
		`{"session_id":"`+fuzzID+`","points":null}`, `{"points":[],"session_id":"`+fuzzID+`","points":[]}`)
	for _, n := range []int{1, 2, 99, 100, 101} {
		pts := make([]string, n)
		for i := range pts {
			pts[i] = point(map[string]int{"sequence_number": i}, nil)
		}
		batch = append(batch, wrap(pts...))
	}
	for _, f := range gpsPointFields {
		for i := range gpsValues[f] {
			batch = append(batch, wrap(point(nil, nil), point(map[string]int{f: i}, nil)))
		}
		batch = append(batch, wrap(point(map[string]int{f: 0}, map[string]bool{f: true})))
	}
	for i := range gpsValues["session_id"] {
		batch = append(batch, strings.Replace(wrap(point(nil, nil)), `"`+fuzzID+`"`, gpsValues["session_id"][i], 1))
	}
	// Random mixtures.
	rng := rand.New(rand.NewPCG(14, 14))
	for range 300 {
		pick, drop := map[string]int{}, map[string]bool{}
		for _, f := range singleFields {
			pick[f] = rng.IntN(len(gpsValues[f]))
			drop[f] = rng.IntN(12) == 0
		}
		single = append(single, gpsObjectJSON(singleFields, pick, drop))
		batch = append(batch, wrap(point(nil, nil), point(pick, drop)))
	}
	return single, batch
}

// checkGPSBody asserts what the fast path must hold for one body: if it takes the body, kin-openapi
// accepts it too, and decodeBody decodes it to the same value.
func checkGPSBody(t *testing.T, sp *spec, g *gpsBodies, pattern, body string) (taken bool) {
	t.Helper()
	var fast, slow any
	var ok bool
	if pattern == "/locations" {
		var v singlePointBody
		v, ok = g.decodeSingle([]byte(body))
		fast, slow = &v, new(singlePointBody)
	} else {
		var v batchBody
		v, ok = g.decodeBatch([]byte(body))
		fast, slow = &v, new(batchBody)
	}
	if !ok {
		return false
	}
	r := httptest.NewRequest(http.MethodPost, pattern, bytes.NewReader([]byte(body)))
	r.Header.Set("Content-Type", "application/json")
	if err := sp.validate(r, sp.operation("POST", pattern)); err != nil {
		t.Fatalf("POST %s %s: the fast path took it, the document refuses it: %v", pattern, body, err)
	}
	if err := decodeBody(r, slow); err != nil {
		t.Fatalf("POST %s %s: the fast path took it, decodeBody refuses it: %v", pattern, body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("POST %s %s: the fast path decoded %+v, decodeBody %+v", pattern, body, fast, slow)
	}
	return true
}

func compiledGPS(t testing.TB) (*spec, *gpsBodies) {
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	g, err := compileGPSBodies(sp.doc, sp.formats)
	if err != nil {
		t.Fatalf("the GPS bodies' schemas do not compile (the fast path would be off): %v", err)
	}
	return sp, g
}

func TestGPSBody_AcceptsOnlyWhatTheDocumentAccepts(t *testing.T) {
	t.Parallel()
	sp, g := compiledGPS(t)
	single, batch := gpsCorpus()
	var taken int
	for _, b := range single {
		if checkGPSBody(t, sp, g, "/locations", b) {
			taken++
		}
	}
	for _, b := range batch {
		if checkGPSBody(t, sp, g, "/locations/batch", b) {
			taken++
		}
	}
	// The bodies phones send (and the benchmark's) take the fast path.
	for _, c := range []struct{ pattern, body string }{
		{"/locations", bodyRoutes[0].seeds[0]},
		{"/locations", bodyRoutes[0].seeds[1]},
		{"/locations/batch", bodyRoutes[1].seeds[0]},
		{"/locations", `{"session_id":"` + fuzzID + `","latitude":12.910000,"longitude":77.500000,"accuracy":5,"recorded_at":"2026-12-01T19:20:30.123456789Z","sequence_number":7}`},
	} {
		if !checkGPSBody(t, sp, g, c.pattern, c.body) {
			t.Errorf("POST %s %s: the fast path does not take it", c.pattern, c.body)
		}
	}
	t.Logf("the fast path took %d of %d bodies", taken, len(single)+len(batch))
}

func TestGPSBody_SchemaItDoesNotImplementTurnsItOff(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, from, to string }{
		{"a new keyword on the point", "    PointInput:\n      type: object\n",
			"    PointInput:\n      type: object\n      minProperties: 4\n"},
		{"a new property", "        sequence_number: { type: integer, minimum: 0, maximum: 2147483647, x-message: \"sequence_number must be an integer >= 0\" }\n",
			"        sequence_number: { type: integer, minimum: 0, maximum: 2147483647, x-message: \"sequence_number must be an integer >= 0\" }\n        heading: { type: number }\n"},
		{"an exclusive bound", "accuracy: { type: number, minimum: 0,", "accuracy: { type: number, minimum: 0, exclusiveMinimum: true,"},
		{"a string pattern", "recorded_at: { type: string, format: date-time,", "recorded_at: { type: string, format: date-time, pattern: \"Z$\","},
		{"a type changed", "        sequence_number: { type: integer,", "        sequence_number: { type: number,"},
	} {
		yaml := strings.Replace(string(openapiYAML), c.from, c.to, 1)
		if yaml == string(openapiYAML) {
			t.Fatalf("%s: the document no longer has %q", c.name, c.from)
		}
		sp, err := parseSpec([]byte(yaml))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, err := compileGPSBodies(sp.doc, sp.formats); err == nil {
			t.Errorf("%s: compiled anyway", c.name)
		}
	}
}

func FuzzGPSBody(f *testing.F) {
	sp, g := compiledGPS(f)
	single, batch := gpsCorpus()
	for _, b := range single {
		f.Add("/locations", b)
	}
	for _, b := range batch[:40] {
		f.Add("/locations/batch", b)
	}
	f.Fuzz(func(t *testing.T, pattern, body string) {
		if pattern != "/locations" {
			pattern = "/locations/batch"
		}
		checkGPSBody(t, sp, g, pattern, body)
	})
}

// dateTimeCases are date-times and near misses.
var dateTimeCases = []string{"2026-03-01T09:30:00Z", "2026-03-01T09:30:00.123Z", "2026-03-01T09:30:00.Z",
	"2026-03-01T09:30:00+05:30", "2026-03-01T09:30:00-23:59", "2026-03-01T09:30:00+24:00", "2026-03-01T09:30:00+05:60",
	"2026-03-01T09:30:00+0530", "2026-03-01T09:30:00", "2026-02-29T09:30:00Z", "2024-02-29T09:30:00Z",
	"2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z",
	"2026-01-32T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z",
	"2026-01-01T23:59:61Z", "2026-01-01t23:59:59Z", "2026-01-01T23:59:59z", "2026-01-01 23:59:59Z",
	"20260-01-01T00:00:00Z", "226-01-01T00:00:00Z", "2026-1-01T00:00:00Z", "2026-01-01T00:00:00ZZ",
	"2026-01-01T00:00:00.000000000000000001+00:00", "", "2026", "2026-01-01", "2026-01-01T", "x026-01-01T00:00:00Z",
	"2026-01-01T00:00:00+", "2026-01-01T00:00:00+01:0", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"}

func checkDateTime(t *testing.T, v string) {
	kin := openapi3.SchemaStringFormats["date-time"].Validate(v) == nil
	if ours := (dateTimeFormat{}).Validate(v) == nil; ours != kin {
		t.Fatalf("%q: dateTimeFormat says %v, kin-openapi %v", v, ours, kin)
	}
}

func TestDateTimeFormat_IsKinOpenAPIs(t *testing.T) {
	t.Parallel()
	for _, v := range dateTimeCases {
		checkDateTime(t, v)
	}
}

func FuzzDateTimeFormat(f *testing.F) {
	for _, v := range dateTimeCases {
		f.Add(v)
	}
	f.Fuzz(checkDateTime)
}
