package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

func TestRespondLocation_WritesWhatRespondWrites(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(14, 1))
	floats := []float64{0, math.Copysign(0, -1), 12.971599, -90, 180, 1e-7, 1e-6, 5e-324, 1e20, 1e21, 1.5e300,
		123456789.123, 0.1 + 0.2, math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	times := []time.Time{time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC), time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.FixedZone("", 19800)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, 0).UTC(),
		time.Date(2026, 12, 1, 20, 0, 0, 120000, time.Local)}
	for i := range 2000 {
		loc := db.GpsLocation{OrganizationID: uuid.New(), SessionID: uuid.New(), ID: uuid.New(), EmployeeID: uuid.New(),
			RecordedAt: times[rng.IntN(len(times))], CreatedAt: times[rng.IntN(len(times))],
			Latitude: floats[rng.IntN(len(floats))], Longitude: rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30))}
		if i%3 != 0 {
			a := floats[rng.IntN(len(floats))]
			loc.Accuracy = &a
		}
		if i%4 != 0 {
			n := int32(rng.Uint32())
			loc.SequenceNumber = &n
		}
		fast, slow := httptest.NewRecorder(), httptest.NewRecorder()
		_ = respondLocation(fast, 201, loc)
		_ = respond(slow, 201, loc)
		if fast.Code != slow.Code || !bytes.Equal(fast.Body.Bytes(), slow.Body.Bytes()) ||
			fast.Header().Get("Content-Type") != slow.Header().Get("Content-Type") {
			t.Fatalf("%+v:\nrespondLocation %d %q\nrespond         %d %q", loc, fast.Code, fast.Body, slow.Code, slow.Body)
		}
		if _, ok := appendLocationEnvelope(nil, loc); ok && !json.Valid(fast.Body.Bytes()) {
			t.Fatalf("invalid JSON: %s", fast.Body)
		}
	}
}
