package httpapi

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// Synthetic tracks -----------------------------------------------------------------------------------------

// fix is one synthetic GPS fix as a phone would upload it.
type fix struct {
	At       time.Time
	Lat, Lon float64
	Acc      float64
	Seq      int
}

// json is the fix as a PointInput.
func (f fix) json() map[string]any {
	return map[string]any{
		"latitude": f.Lat, "longitude": f.Lon, "accuracy": f.Acc,
		"recorded_at": f.At.UTC().Format(time.RFC3339Nano), "sequence_number": f.Seq,
	}
}

const metresPerDegree = 111320.0

// moveBy returns the position north and east metres from lat, lon (local flat-earth conversion).
func moveBy(lat, lon, north, east float64) (float64, float64) {
	return lat + north/metresPerDegree, lon + east/(metresPerDegree*math.Cos(lat*math.Pi/180))
}

// noise draws the horizontal position error in metres (north, east) of a fix taken at at.
type noise func(r *rand.Rand, at time.Time) (north, east float64)

// gaussian is independent normal noise of sigma metres on each axis.
func gaussian(sigma float64) noise {
	return func(r *rand.Rand, _ time.Time) (float64, float64) {
		return r.NormFloat64() * sigma, r.NormFloat64() * sigma
	}
}

// inDisk is noise uniformly distributed over a disk of radius metres.
func inDisk(radius float64) noise {
	return func(r *rand.Rand, _ time.Time) (float64, float64) {
		d, a := radius*math.Sqrt(r.Float64()), 2*math.Pi*r.Float64()
		return d * math.Cos(a), d * math.Sin(a)
	}
}

// drift is a multipath-like error that wanders for minutes instead of jumping: per axis, white noise
// through two first-order low-pass stages of time constant tau (a second-order Gauss-Markov process, whose
// path is smooth), with a horizontal RMS of amplitude metres (amplitude/sqrt2 per axis), plus independent
// gaussian noise of white metres per axis. Its state belongs to one track: use a new drift per track.
func drift(amplitude float64, tau time.Duration, white float64) noise {
	// The first stage has variance amplitude^2 per axis, the second (the error) half of it.
	var s1, s2 [2]float64
	var last time.Time
	return func(r *rand.Rand, at time.Time) (float64, float64) {
		if last.IsZero() {
			for a := range 2 { // the stationary joint distribution: var(s2) = cov(s1, s2) = amplitude^2/2
				s1[a] = r.NormFloat64() * amplitude
				s2[a] = s1[a]/2 + r.NormFloat64()*amplitude/2
			}
		} else {
			// One-second sub-steps, each exact for the first stage.
			dt := at.Sub(last).Seconds()
			steps := max(1, int(math.Ceil(dt)))
			rho := math.Exp(-dt / float64(steps) / tau.Seconds())
			for range steps {
				for a := range 2 {
					s1[a] = rho*s1[a] + math.Sqrt(1-rho*rho)*amplitude*r.NormFloat64()
					s2[a] = rho*s2[a] + (1-rho)*s1[a]
				}
			}
		}
		last = at
		return s2[0] + r.NormFloat64()*white, s2[1] + r.NormFloat64()*white
	}
}

// sampling is how a phone reports while moving or standing: the interval to the next fix drawn uniformly
// from every, each fix's reported accuracy uniformly from acc (whatever its actual error).
type sampling struct {
	every [2]time.Duration
	acc   [2]float64
}

func (s sampling) interval(r *rand.Rand) time.Duration {
	return s.every[0] + time.Duration(r.Int64N(int64(s.every[1]-s.every[0])+1))
}

func (s sampling) accuracy(r *rand.Rand) float64 { return s.acc[0] + r.Float64()*(s.acc[1]-s.acc[0]) }

// uniform draws from [lo, hi).
func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + r.Float64()*(hi-lo) }

// track generates a deterministic synthetic track: a true position that stands or moves in straight
// lines, and a noisy fix of it at every sample.
type track struct {
	rng      *rand.Rand
	lat, lon float64 // true position
	at       time.Time
	seq      int
	trueM    float64      // true distance travelled, metres (of moveBy's flat earth)
	path     [][2]float64 // the true positions (lat, lon) where the motion changes: the truth's vertices
	next     time.Time    // when the next sampled fix is due (leg, pause)
	fixes    []fix
}

func newTrack(seed uint64, lat, lon float64, start time.Time) *track {
	// Phones report milliseconds; the database keeps microseconds.
	return &track{rng: rand.New(rand.NewPCG(seed, seed*0x9E3779B97F4A7C15+1)), lat: lat, lon: lon,
		at: start.Truncate(time.Millisecond), path: [][2]float64{{lat, lon}}}
}

func (tr *track) emit(nz noise, acc float64) {
	n, e := nz(tr.rng, tr.at)
	lat, lon := moveBy(tr.lat, tr.lon, n, e)
	tr.fixes = append(tr.fixes, fix{At: tr.at, Lat: lat, Lon: lon, Acc: acc, Seq: tr.seq})
	tr.seq++
}

// drive moves steps times by speed*step metres on bearing (degrees from north), one fix after each move;
// an empty track gets a fix at its starting point first.
func (tr *track) drive(steps int, step time.Duration, speed, bearing float64, nz noise, acc float64) *track {
	if len(tr.fixes) == 0 {
		tr.emit(nz, acc)
	}
	d := speed * step.Seconds()
	b := bearing * math.Pi / 180
	for range steps {
		tr.lat, tr.lon = moveBy(tr.lat, tr.lon, d*math.Cos(b), d*math.Sin(b))
		tr.at = tr.at.Add(step)
		tr.trueM += d
		tr.emit(nz, acc)
	}
	tr.path = append(tr.path, [2]float64{tr.lat, tr.lon})
	return tr
}

// stand emits n fixes every step at the current true position, starting one step after the last fix
// (or at the start on an empty track).
func (tr *track) stand(n int, step time.Duration, nz noise, acc float64) *track {
	for i := range n {
		if len(tr.fixes) > 0 || i > 0 {
			tr.at = tr.at.Add(step)
		}
		tr.emit(nz, acc)
	}
	return tr
}

// sampled starts the sampling of leg and pause: an empty track gets a fix at its starting point.
func (tr *track) sampled(s sampling, nz noise) {
	if len(tr.fixes) == 0 {
		tr.emit(nz, s.accuracy(tr.rng))
		tr.next = tr.at.Add(s.interval(tr.rng))
	}
}

// leg moves metres on bearing at speed m/s, with a fix wherever s samples one on the way (the sampling
// runs on across legs and pauses, so corners fall between fixes as they do on a phone).
func (tr *track) leg(metres, speed, bearing float64, s sampling, nz noise) *track {
	tr.sampled(s, nz)
	b := bearing * math.Pi / 180
	lat0, lon0, start := tr.lat, tr.lon, tr.at
	end := start.Add(time.Duration(metres / speed * float64(time.Second)))
	for !tr.next.After(end) {
		d := speed * tr.next.Sub(start).Seconds()
		tr.lat, tr.lon = moveBy(lat0, lon0, d*math.Cos(b), d*math.Sin(b))
		tr.at = tr.next
		tr.emit(nz, s.accuracy(tr.rng))
		tr.next = tr.at.Add(s.interval(tr.rng))
	}
	tr.lat, tr.lon = moveBy(lat0, lon0, metres*math.Cos(b), metres*math.Sin(b))
	tr.at = end
	tr.trueM += metres
	tr.path = append(tr.path, [2]float64{tr.lat, tr.lon})
	return tr
}

// pause stands still for d, with the fixes s samples meanwhile.
func (tr *track) pause(d time.Duration, s sampling, nz noise) *track {
	tr.sampled(s, nz)
	end := tr.at.Add(d)
	for !tr.next.After(end) {
		tr.at = tr.next
		tr.emit(nz, s.accuracy(tr.rng))
		tr.next = tr.at.Add(s.interval(tr.rng))
	}
	tr.at = end
	return tr
}

// gap moves metres on bearing at speed m/s without a single fix (a tunnel); s samples again after it.
func (tr *track) gap(metres, speed, bearing float64, s sampling) *track {
	b := bearing * math.Pi / 180
	tr.lat, tr.lon = moveBy(tr.lat, tr.lon, metres*math.Cos(b), metres*math.Sin(b))
	tr.at = tr.at.Add(time.Duration(metres / speed * float64(time.Second)))
	tr.trueM += metres
	tr.path = append(tr.path, [2]float64{tr.lat, tr.lon})
	tr.next = tr.at.Add(s.interval(tr.rng))
	return tr
}

// finish ends the track with a fix at its true end, so that the truth ends where the fixes do.
func (tr *track) finish(s sampling, nz noise) *track {
	if !tr.fixes[len(tr.fixes)-1].At.Equal(tr.at) {
		tr.emit(nz, s.accuracy(tr.rng))
	}
	return tr
}

// geodesicM is the true path's length as the distance is measured: PostGIS's geodesic on the WGS84
// spheroid through the track's vertices (moveBy's flat earth is off by up to a few tenths of a percent).
func (tr *track) geodesicM(t *testing.T) float64 {
	t.Helper()
	lat, lon := make([]float64, len(tr.path)), make([]float64, len(tr.path))
	for i, p := range tr.path {
		lat[i], lon[i] = p[0], p[1]
	}
	var m float64
	if err := testfactory.Pool(t).QueryRow(t.Context(), `
		SELECT coalesce(ST_Length(ST_MakeLine(ST_SetSRID(ST_MakePoint(u.x, u.y), 4326) ORDER BY u.o)::geography), 0)
		  FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS u(x, y, o)`, lon, lat).Scan(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The drift generator has the amplitude it states, and wanders rather than jumps: fixes 10 s apart
// differ by far less than the amplitude.
func TestDrift_HasItsAmplitudeAndMovesSmoothly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		amplitude float64
		tau       time.Duration
	}{{20, 2 * time.Minute}, {40, 5 * time.Minute}} {
		nz := drift(c.amplitude, c.tau, 0)
		r := rand.New(rand.NewPCG(1, 2))
		at := time.Unix(0, 0)
		var sq, step float64
		var pn, pe float64
		const n = 100_000
		for i := range n {
			north, east := nz(r, at)
			sq += north*north + east*east
			if i > 0 {
				step += math.Hypot(north-pn, east-pe)
			}
			pn, pe = north, east
			at = at.Add(10 * time.Second)
		}
		rms, meanStep := math.Sqrt(sq/n), step/(n-1)
		t.Logf("amplitude %.0f m, tau %v: horizontal RMS %.1f m, mean change over 10 s %.2f m", c.amplitude, c.tau, rms, meanStep)
		if !within(rms, c.amplitude, 0.1) {
			t.Errorf("RMS %.1f m, want %.0f m within 10%%", rms, c.amplitude)
		}
		if meanStep > c.amplitude/10 {
			t.Errorf("mean change over 10 s %.2f m: the drift jumps", meanStep)
		}
	}
}
