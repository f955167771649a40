package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
)

// The two GPS bodies (POST /locations, POST /locations/batch) are most of the API's requests. kin-openapi
// validates a body by decoding it into maps and walking the whole schema, which cost a single fix about a
// tenth of its server CPU (issue 14). For these two the walk is compiled once, at start-up, from their
// schemas in openapi.yaml: which keys an object has and which it requires, the bounds of the points array,
// each number's minimum and maximum and each string's format validator (the very validator kin-openapi
// would call). A request is then scanned once, each value checked as kin-openapi checks it and decoded as
// decodeBody would decode it. A schema keyword this file does not implement keeps the fast path off.
//
// The fast path only accepts: a body it does not take as it is (any error, and anything unusual — escapes,
// null, a key it does not know or a repeated one, an integer written with a fraction or an exponent,
// trailing data) goes through kin-openapi and decodeBody as before, so every refusal, with its message
// naming the field, is still the document's. TestGPSBody_AcceptsOnlyWhatTheDocumentAccepts checks that
// whatever the fast path accepts the document accepts too and decodes to the same values.

// gpsField is where a leaf of a GPS body goes.
type gpsField int

const (
	fieldLatitude gpsField = iota
	fieldLongitude
	fieldAccuracy
	fieldRecordedAt
	fieldSequence
	fieldSession
	fieldPoints
	fieldCount
)

// gpsFieldNames are the JSON names of the fields, as openapi.yaml and the body structs spell them.
var gpsFieldNames = [fieldCount]string{"latitude", "longitude", "accuracy", "recorded_at", "sequence_number",
	"session_id", "points"}

// gpsLeaf is one compiled property: a number's inclusive bounds, a string's format validator.
type gpsLeaf struct {
	min, max *float64
	format   openapi3.StringFormatValidator
}

// gpsObject is one compiled object schema: for each field it may hold, its rules (nil: not a property of
// this object), and which fields it requires.
type gpsObject struct {
	leaf     [fieldCount]*gpsLeaf
	required [fieldCount]bool
}

// gpsBodies are the compiled schemas of the two bodies.
type gpsBodies struct {
	single, batch, point gpsObject
	minPoints, maxPoints int
}

// compileGPSBodies compiles the two bodies' schemas from doc, whose own string formats are formats (the
// others are kin-openapi's). It fails on a schema it does not implement in full (a keyword other than
// those below, a property it has no field for, an OpenAPI 3.1 document); the server then validates these
// bodies with kin-openapi alone (see Server.gpsFast).
func compileGPSBodies(doc *openapi3.T, formats map[string]openapi3.StringFormatValidator) (*gpsBodies, error) {
	if doc.IsOpenAPI31OrLater() {
		return nil, errors.New("OpenAPI 3.1 schemas are not compiled")
	}
	body := func(path string) (*openapi3.Schema, error) {
		item := doc.Paths.Value(path)
		if item == nil || item.Post == nil || item.Post.RequestBody == nil || item.Post.RequestBody.Value == nil {
			return nil, fmt.Errorf("POST %s has no request body", path)
		}
		mt := item.Post.RequestBody.Value.Content.Get("application/json")
		if !item.Post.RequestBody.Value.Required || mt == nil || mt.Schema == nil || mt.Schema.Value == nil ||
			len(item.Post.RequestBody.Value.Content) != 1 {
			return nil, fmt.Errorf("POST %s: want one required application/json body", path)
		}
		return mt.Schema.Value, nil
	}
	g := &gpsBodies{}
	single, err := body("/locations")
	if err != nil {
		return nil, err
	}
	// The single fix: allOf of objects (the point and the session id), their properties disjoint.
	if err := onlyKeywords(single, "allOf"); err != nil {
		return nil, fmt.Errorf("POST /locations: %w", err)
	}
	for _, part := range single.AllOf {
		if part.Value == nil {
			return nil, errors.New("POST /locations: an allOf part is unresolved")
		}
		if err := g.single.add(part.Value, formats); err != nil {
			return nil, fmt.Errorf("POST /locations: %w", err)
		}
	}
	batch, err := body("/locations/batch")
	if err != nil {
		return nil, err
	}
	if err := g.batch.add(batch, formats); err != nil {
		return nil, fmt.Errorf("POST /locations/batch: %w", err)
	}
	points := batch.Properties["points"]
	if points == nil || points.Value == nil || points.Value.Items == nil || points.Value.Items.Value == nil ||
		!points.Value.Type.Is(openapi3.TypeArray) || points.Value.MaxItems == nil {
		return nil, errors.New("POST /locations/batch: points must be an array with items and maxItems")
	}
	if err := onlyKeywords(points.Value, "type", "items", "minItems", "maxItems"); err != nil {
		return nil, fmt.Errorf("POST /locations/batch: points: %w", err)
	}
	g.minPoints, g.maxPoints = int(points.Value.MinItems), int(*points.Value.MaxItems)
	if err := g.point.add(points.Value.Items.Value, formats); err != nil {
		return nil, fmt.Errorf("POST /locations/batch: points: %w", err)
	}
	// Each body must hold exactly the fields its Go struct decodes.
	for _, c := range []struct {
		name   string
		o      *gpsObject
		fields []gpsField
	}{
		{"POST /locations", &g.single, []gpsField{fieldLatitude, fieldLongitude, fieldAccuracy, fieldRecordedAt, fieldSequence, fieldSession}},
		{"POST /locations/batch", &g.batch, []gpsField{fieldSession, fieldPoints}},
		{"a batch's point", &g.point, []gpsField{fieldLatitude, fieldLongitude, fieldAccuracy, fieldRecordedAt, fieldSequence}},
	} {
		for f := range fieldCount {
			if (c.o.leaf[f] != nil) != slices.Contains(c.fields, f) {
				return nil, fmt.Errorf("%s: property %s is not the one the handler decodes", c.name, gpsFieldNames[f])
			}
		}
	}
	return g, nil
}

// add compiles an object schema into o: its properties (each a leaf of a type its field decodes) and its
// required list.
func (o *gpsObject) add(s *openapi3.Schema, formats map[string]openapi3.StringFormatValidator) error {
	if !s.Type.Is(openapi3.TypeObject) {
		return errors.New("not an object")
	}
	if err := onlyKeywords(s, "type", "properties", "required"); err != nil {
		return err
	}
	for name, ref := range s.Properties {
		f := gpsField(slices.Index(gpsFieldNames[:], name))
		if f < 0 || ref.Value == nil {
			return fmt.Errorf("property %s has no field", name)
		}
		if o.leaf[f] != nil {
			return fmt.Errorf("property %s appears twice", name)
		}
		want := map[gpsField]string{fieldLatitude: openapi3.TypeNumber, fieldLongitude: openapi3.TypeNumber,
			fieldAccuracy: openapi3.TypeNumber, fieldRecordedAt: openapi3.TypeString, fieldSequence: openapi3.TypeInteger,
			fieldSession: openapi3.TypeString, fieldPoints: openapi3.TypeArray}[f]
		v := ref.Value
		if v.Type == nil || len(*v.Type) != 1 || !v.Type.Is(want) {
			return fmt.Errorf("property %s: want type %s", name, want)
		}
		leaf := &gpsLeaf{min: v.Min, max: v.Max}
		var err error
		switch want {
		case openapi3.TypeArray: // compiled by compileGPSBodies
		case openapi3.TypeString:
			err = onlyKeywords(v, "type", "format")
			if leaf.format = formats[v.Format]; leaf.format == nil {
				leaf.format = openapi3.SchemaStringFormats[v.Format]
				if v.Format == "date-time" && leaf.format != nil {
					leaf.format = dateTimeFormat{} // the same rule, without a regular expression
				}
			}
			if leaf.format == nil {
				err = fmt.Errorf("format %q has no validator", v.Format)
			}
		default:
			err = onlyKeywords(v, "type", "minimum", "maximum")
		}
		if err != nil {
			return fmt.Errorf("property %s: %w", name, err)
		}
		o.leaf[f] = leaf
	}
	for _, name := range s.Required {
		f := slices.Index(gpsFieldNames[:], name)
		if f < 0 {
			return fmt.Errorf("required %s has no field", name)
		}
		o.required[f] = true
	}
	return nil
}

// number checks x against the leaf's bounds as kin-openapi does (inclusive).
func (l *gpsLeaf) number(x float64) bool {
	return (l.min == nil || *l.min <= x) && (l.max == nil || x <= *l.max)
}

// onlyKeywords fails when s uses a keyword other than allowed (descriptions, examples and x- extensions
// aside): a keyword this file would not apply.
func onlyKeywords(s *openapi3.Schema, allowed ...string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var kw map[string]json.RawMessage
	if err := json.Unmarshal(b, &kw); err != nil {
		return err
	}
	for k := range kw {
		switch {
		case slices.Contains(allowed, k), k == "description", k == "title", k == "example", len(k) > 2 && k[:2] == "x-":
		default:
			return fmt.Errorf("keyword %s is not compiled", k)
		}
	}
	return nil
}

// decodeSingle validates and decodes a POST /locations body; ok is false when the fast path does not take
// it (see above).
func (g *gpsBodies) decodeSingle(b []byte) (body singlePointBody, ok bool) {
	sc := gpsScanner{b: b}
	if !g.object(&sc, &g.single, &body.point, &body.SessionID, nil) || !sc.end() {
		return singlePointBody{}, false
	}
	return body, true
}

// decodeBatch validates and decodes a POST /locations/batch body; ok is false when the fast path does not
// take it.
func (g *gpsBodies) decodeBatch(b []byte) (body batchBody, ok bool) {
	sc := gpsScanner{b: b}
	if !g.object(&sc, &g.batch, nil, &body.SessionID, &body.Points) || !sc.end() {
		return batchBody{}, false
	}
	return body, true
}

// object scans one object of schema o into pt, session and points (those o has).
func (g *gpsBodies) object(sc *gpsScanner, o *gpsObject, pt *point, session *uuid.UUID, points *[]point) bool {
	if !sc.next('{') {
		return false
	}
	var seen [fieldCount]bool
	if !sc.next('}') {
		for {
			key, ok := sc.str()
			if !ok || !sc.next(':') {
				return false
			}
			f := gpsField(slices.Index(gpsFieldNames[:], string(key)))
			if f < 0 || o.leaf[f] == nil || seen[f] {
				return false
			}
			seen[f] = true
			if !g.value(sc, f, o.leaf[f], pt, session, points) {
				return false
			}
			if sc.next('}') {
				break
			}
			if !sc.next(',') {
				return false
			}
		}
	}
	for f := range fieldCount {
		if o.required[f] && !seen[f] {
			return false
		}
	}
	return true
}

// value scans the value of field f, checks it against its leaf and stores it.
func (g *gpsBodies) value(sc *gpsScanner, f gpsField, leaf *gpsLeaf, pt *point, session *uuid.UUID,
	points *[]point) bool {
	switch f {
	case fieldPoints:
		return g.points(sc, points)
	case fieldSession, fieldRecordedAt:
		s, ok := sc.str()
		if !ok || leaf.format.Validate(string(s)) != nil {
			return false
		}
		if f == fieldSession {
			id, err := uuid.ParseBytes(s)
			*session = id
			return err == nil
		}
		// As encoding/json decodes a time.Time: the quoted string.
		return pt.RecordedAt.UnmarshalJSON(sc.b[sc.i-len(s)-2:sc.i]) == nil
	}
	num, integer, ok := sc.number()
	if !ok {
		return false
	}
	if f == fieldSequence {
		if !integer {
			return false
		}
		n, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || n < math.MinInt32 || n > math.MaxInt32 || !leaf.number(float64(n)) {
			return false
		}
		v := int32(n)
		pt.SequenceNumber = &v
		return true
	}
	x, err := strconv.ParseFloat(string(num), 64)
	if err != nil || !leaf.number(x) {
		return false
	}
	switch f {
	case fieldLatitude:
		pt.Latitude = x
	case fieldLongitude:
		pt.Longitude = x
	default:
		pt.Accuracy = x
	}
	return true
}

// points scans the points array of a batch.
func (g *gpsBodies) points(sc *gpsScanner, out *[]point) bool {
	if !sc.next('[') {
		return false
	}
	pts := make([]point, 0, min(g.maxPoints, 128))
	if !sc.next(']') {
		for {
			if len(pts) == g.maxPoints {
				return false
			}
			pts = append(pts, point{})
			if !g.object(sc, &g.point, &pts[len(pts)-1], nil, nil) {
				return false
			}
			if sc.next(']') {
				break
			}
			if !sc.next(',') {
				return false
			}
		}
	}
	if len(pts) < g.minPoints {
		return false
	}
	*out = pts
	return true
}

// gpsScanner reads the subset of JSON the fast path takes: objects, arrays, numbers, and strings without
// escapes or control characters.
type gpsScanner struct {
	b []byte
	i int
}

func (s *gpsScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c (after white space) if it comes next.
func (s *gpsScanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *gpsScanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str scans a string and returns its contents.
func (s *gpsScanner) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// number scans a JSON number; integer is true when it has neither a fraction nor an exponent.
func (s *gpsScanner) number() (num []byte, integer, ok bool) {
	s.space()
	start := s.i
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	lead := s.i
	if n := digits(); n == 0 || (n > 1 && s.b[lead] == '0') {
		return nil, false, false
	}
	integer = true
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, false, false
		}
		integer = false
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, false, false
		}
		integer = false
	}
	return s.b[start:s.i], integer, true
}

// gpsFast is the compiled body decoder of method+pattern, nil for a route without one.
func (s *Server) gpsFast(method, pattern string) func([]byte) (any, bool) {
	if s.gps == nil || method != "POST" {
		return nil
	}
	switch pattern {
	case "/locations":
		return func(b []byte) (any, bool) {
			body, ok := s.gps.decodeSingle(b)
			return &body, ok
		}
	case "/locations/batch":
		return func(b []byte) (any, bool) {
			body, ok := s.gps.decodeBatch(b)
			return &body, ok
		}
	}
	return nil
}

// dateTimeFormat is kin-openapi's date-time format (openapi3.FormatOfStringDateTime, then a date the month
// has) without its regular expression, which was half of a batch's decoding; TestDateTimeFormat_IsKinOpenAPIs
// holds them equal.
type dateTimeFormat struct{}

// Validate accepts YYYY-MM-DDTHH:MM:SS, an optional fraction, then Z or ±HH:MM, every field in range
// (seconds up to 60) and the day in its month.
func (dateTimeFormat) Validate(v string) error {
	bad := errors.New("not an RFC 3339 date-time")
	digit := func(i int) bool { return i < len(v) && v[i] >= '0' && v[i] <= '9' }
	two := func(i int) int { return int(v[i]-'0')*10 + int(v[i+1]-'0') }
	at := func(i int, c byte) bool { return i < len(v) && v[i] == c }
	for _, i := range []int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if !digit(i) {
			return bad
		}
	}
	if !at(4, '-') || !at(7, '-') || !at(10, 'T') || !at(13, ':') || !at(16, ':') {
		return bad
	}
	if m, d, h, mi, sec := two(5), two(8), two(11), two(14), two(17); m < 1 || m > 12 || d < 1 || d > 31 ||
		h > 23 || mi > 59 || sec > 60 {
		return bad
	}
	i := 19
	if at(i, '.') {
		i++
		if !digit(i) {
			return bad
		}
		for digit(i) {
			i++
		}
	}
	switch {
	case at(i, 'Z'):
		i++
	case at(i, '+') || at(i, '-'):
		if !digit(i+1) || !digit(i+2) || !at(i+3, ':') || !digit(i+4) || !digit(i+5) || two(i+1) > 23 || two(i+4) > 59 {
			return bad
		}
		i += 6
	default:
		return bad
	}
	if i != len(v) {
		return bad
	}
	if _, err := time.Parse(time.DateOnly, v[:len(time.DateOnly)]); err != nil {
		return bad
	}
	return nil
}
