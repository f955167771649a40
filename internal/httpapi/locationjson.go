package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// respondLocation writes {"success":true,"data":loc} as respond does, byte for byte, without reflection:
// it is the answer to every single fix (encoding/json cost it 8% of the request's server CPU, issue 14).
// A row encoding/json would refuse (a non-finite accuracy or a year past 9999, which only rows written
// outside the API can hold) goes through respond.
func respondLocation(w http.ResponseWriter, status int, loc db.GpsLocation) error {
	b, ok := appendLocationEnvelope(make([]byte, 0, 512), loc)
	if !ok {
		return respond(w, status, loc)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

// appendLocationEnvelope appends the envelope of loc and a newline (json.Encoder's); ok is false when
// encoding/json would fail on loc.
func appendLocationEnvelope(b []byte, loc db.GpsLocation) ([]byte, bool) {
	ok := true
	id := func(k string, u uuid.UUID) {
		b = append(b, k...)
		b = append(b, '"')
		b = append(b, u.String()...)
		b = append(b, '"')
	}
	at := func(k string, t time.Time) {
		if y := t.Year(); y < 0 || y > 9999 {
			ok = false
		}
		b = append(b, k...)
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	num := func(k string, f float64) {
		b = append(b, k...)
		var good bool
		b, good = appendJSONFloat(b, f)
		ok = ok && good
	}
	b = append(b, `{"success":true,"data":`...)
	id(`{"organization_id":`, loc.OrganizationID)
	id(`,"session_id":`, loc.SessionID)
	at(`,"recorded_at":`, loc.RecordedAt)
	id(`,"id":`, loc.ID)
	id(`,"employee_id":`, loc.EmployeeID)
	num(`,"latitude":`, loc.Latitude)
	num(`,"longitude":`, loc.Longitude)
	if loc.Accuracy == nil {
		b = append(b, `,"accuracy":null`...)
	} else {
		num(`,"accuracy":`, *loc.Accuracy)
	}
	b = append(b, `,"sequence_number":`...)
	if loc.SequenceNumber == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*loc.SequenceNumber), 10)
	}
	at(`,"created_at":`, loc.CreatedAt)
	b = append(b, "}}\n"...)
	return b, ok
}

// appendJSONFloat formats f as encoding/json formats a float64; ok is false for NaN and infinities, which
// it refuses.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 → e-9, as encoding/json writes it
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}
