package httpapi

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// Generators other than tracks_test.go's --------------------------------------------------------------------
//
// The cleaning must not be fitted to one generator. These walks vary what tracks_test.go's downtownWalk
// fixes: the shape of the drifting error (first-order Gauss-Markov, a slowly reverting random walk, a sum of
// sinusoids, besides drift's smooth second-order process), the white noise on top, whether the reported
// accuracy follows the actual error, regular or bursty sampling, the pace, and a street grid with waits at
// crossings, a café stay or a phone parked for hours.

// ouDrift is a first-order Gauss-Markov (Ornstein-Uhlenbeck) error per axis of horizontal RMS amplitude
// metres and time constant tau, plus white metres of gaussian noise per axis: its path is continuous but
// rough (it changes by amplitude x sqrt(dt/tau) over dt, whatever the sampling). With a tau of tens of
// minutes it is a random walk with slow mean reversion. Its state belongs to one track.
func ouDrift(amplitude float64, tau time.Duration, white float64) noise {
	sd := amplitude / math.Sqrt2
	var e [2]float64
	var last time.Time
	return func(r *rand.Rand, at time.Time) (float64, float64) {
		if last.IsZero() {
			e = [2]float64{r.NormFloat64() * sd, r.NormFloat64() * sd} // stationary from the start
		} else {
			rho := math.Exp(-at.Sub(last).Seconds() / tau.Seconds())
			for a := range e {
				e[a] = rho*e[a] + math.Sqrt(1-rho*rho)*sd*r.NormFloat64()
			}
		}
		last = at
		return e[0] + r.NormFloat64()*white, e[1] + r.NormFloat64()*white
	}
}

// sinesDrift is an error of horizontal RMS amplitude metres made, per axis, of five sinusoids of periods
// drawn from 1-10 min with random phases and weights, plus white metres of gaussian noise per axis:
// deterministic, smooth, and at its shortest periods as fast as a walker.
func sinesDrift(r *rand.Rand, amplitude, white float64) noise {
	type sine struct{ a, w, phase float64 }
	var axes [2][5]sine
	for a := range axes {
		var sq float64
		for i := range axes[a] {
			s := sine{a: uniform(r, 0.2, 1), w: 2 * math.Pi / uniform(r, 60, 600), phase: uniform(r, 0, 2*math.Pi)}
			axes[a][i] = s
			sq += s.a * s.a / 2
		}
		for i := range axes[a] { // per-axis RMS amplitude/sqrt2
			axes[a][i].a *= amplitude / math.Sqrt2 / math.Sqrt(sq)
		}
	}
	var t0 time.Time
	return func(r *rand.Rand, at time.Time) (float64, float64) {
		if t0.IsZero() {
			t0 = at
		}
		t := at.Sub(t0).Seconds()
		var e [2]float64
		for a := range axes {
			for _, s := range axes[a] {
				e[a] += s.a * math.Sin(s.w*t+s.phase)
			}
		}
		return e[0] + r.NormFloat64()*white, e[1] + r.NormFloat64()*white
	}
}

// sampler says when a phone reports next and what accuracy it reports for an actual error of err metres.
type sampler struct {
	bursty bool       // bursts of 5-15 fixes 1-3 s apart, then a silence of 20-60 s; else every 5-20 s
	acc    [2]float64 // the reported accuracy's range
	follow bool       // the accuracy follows the actual error (1-1.5 times it, plus 0-10 m); else uniform
	left   int        // fixes left in the current burst
}

func (s *sampler) interval(r *rand.Rand) time.Duration {
	if !s.bursty {
		return time.Duration(uniform(r, 5, 20) * float64(time.Second))
	}
	if s.left > 0 {
		s.left--
		return time.Duration(uniform(r, 1, 3) * float64(time.Second))
	}
	s.left = 5 + r.IntN(11)
	return time.Duration(uniform(r, 20, 60) * float64(time.Second))
}

func (s *sampler) accuracy(r *rand.Rand, err float64) float64 {
	if !s.follow {
		return uniform(r, s.acc[0], s.acc[1])
	}
	return min(max(err*uniform(r, 1, 1.5)+uniform(r, 0, 10), s.acc[0]), s.acc[1])
}

// stroll is a true path in time: the walker's position at any instant, as straight legs and waits.
type stroll struct {
	tr   *track
	legs []strollLeg
}

type strollLeg struct {
	from, to time.Time
	lat, lon [2]float64 // start and end
}

func newStroll(seed uint64, lat, lon float64, start time.Time) *stroll {
	return &stroll{tr: newTrack(seed, lat, lon, start)}
}

// walk moves metres on bearing at speed m/s.
func (s *stroll) walk(metres, speed, bearing float64) *stroll {
	tr := s.tr
	b := bearing * math.Pi / 180
	lat, lon := moveBy(tr.lat, tr.lon, metres*math.Cos(b), metres*math.Sin(b))
	end := tr.at.Add(time.Duration(metres / speed * float64(time.Second)))
	s.legs = append(s.legs, strollLeg{tr.at, end, [2]float64{tr.lat, lat}, [2]float64{tr.lon, lon}})
	tr.lat, tr.lon, tr.at = lat, lon, end
	tr.trueM += metres
	tr.path = append(tr.path, [2]float64{lat, lon})
	return s
}

// wait stands still for d.
func (s *stroll) wait(d time.Duration) *stroll {
	tr := s.tr
	s.legs = append(s.legs, strollLeg{tr.at, tr.at.Add(d), [2]float64{tr.lat, tr.lat}, [2]float64{tr.lon, tr.lon}})
	tr.at = tr.at.Add(d)
	return s
}

// grid walks for d on a street grid: blocks of 50-200 m, a right-angle turn at two crossings of three, a
// wait of 20-90 s at half of them, at the walker's pace (each block within 10% of it).
func (s *stroll) grid(d time.Duration, pace float64) *stroll {
	r := s.tr.rng
	bearing := 90 * float64(r.IntN(4))
	for end := s.tr.at.Add(d); s.tr.at.Before(end); {
		s.walk(uniform(r, 50, 200), pace*uniform(r, 0.9, 1.1), bearing)
		if r.Float64() < 0.5 {
			s.wait(time.Duration(uniform(r, 20, 90) * float64(time.Second)))
		}
		bearing += []float64{90, -90, 0}[r.IntN(3)]
	}
	return s
}

// sample emits the phone's fixes of the whole stroll, the first at its start and the last at its end,
// and returns the track (its truth and fixes).
func (s *stroll) sample(sm *sampler, nz noise) *track {
	tr := s.tr
	r := tr.rng
	start, end := s.legs[0].from, s.legs[len(s.legs)-1].to
	leg := 0
	for at := start; ; at = at.Add(sm.interval(r)) {
		if at.After(end) {
			at = end
		}
		for s.legs[leg].to.Before(at) {
			leg++
		}
		l := s.legs[leg]
		f := 0.0
		if span := l.to.Sub(l.from); span > 0 {
			f = float64(at.Sub(l.from)) / float64(span)
		}
		lat, lon := l.lat[0]+f*(l.lat[1]-l.lat[0]), l.lon[0]+f*(l.lon[1]-l.lon[0])
		n, e := nz(r, at)
		flat, flon := moveBy(lat, lon, n, e)
		tr.fixes = append(tr.fixes, fix{At: at, Lat: flat, Lon: flon, Acc: sm.accuracy(r, math.Hypot(n, e)), Seq: tr.seq})
		tr.seq++
		if !at.Before(end) {
			return tr
		}
	}
}

// errorKind is one shape of drifting error, drawn per track.
type errorKind struct {
	name string
	new  func(r *rand.Rand, amplitude, white float64) (noise, time.Duration)
}

// errorKinds: the smooth second-order drift of tracks_test.go (tau 2-5 min), a first-order one (tau
// 1-5 min: rougher), a random walk reverting over 10-30 min, a sum of sinusoids (periods 1-10 min), and
// for comparison no drift at all: white noise of the same size.
var errorKinds = []errorKind{
	{"smooth drift", func(r *rand.Rand, a, w float64) (noise, time.Duration) {
		tau := time.Duration(uniform(r, 120, 300)) * time.Second
		return drift(a, tau, w), tau
	}},
	{"OU drift", func(r *rand.Rand, a, w float64) (noise, time.Duration) {
		tau := time.Duration(uniform(r, 60, 300)) * time.Second
		return ouDrift(a, tau, w), tau
	}},
	{"reverting walk", func(r *rand.Rand, a, w float64) (noise, time.Duration) {
		tau := time.Duration(uniform(r, 600, 1800)) * time.Second
		return ouDrift(a, tau, w), tau
	}},
	{"sinusoids", func(r *rand.Rand, a, w float64) (noise, time.Duration) { return sinesDrift(r, a, w), 0 }},
	{"white noise", func(r *rand.Rand, a, w float64) (noise, time.Duration) {
		return gaussian(math.Hypot(a, w) / math.Sqrt2), 0
	}},
}

// walkVariant is how a variant's walk is made: its error kind, sampling and accuracy, and what the walker
// does (a grid walk of 50 min, a café stay in the middle of one, or a phone parked for 4 h).
type walkVariant struct {
	kind   errorKind
	bursty bool
	follow bool
	scene  string // "grid", "café", "parked"
	jumps  int    // fixes thrown 100-500 m off (multipath spikes a speed filter cannot catch at walking pace)
}

// generate makes the variant's track for seed: an error of 20-40 m RMS plus 0-10 m of white noise,
// accuracy reported in 20-60 m, a pace of 0.8-1.5 m/s. For the café, it also returns the stay's span.
func (v walkVariant) generate(seed uint64, start time.Time) (tr *track, stayFrom, stayTo time.Time, desc string) {
	s := newStroll(seed, 48.8566, 2.3522, start)
	r := s.tr.rng
	amplitude, white := uniform(r, 20, 40), uniform(r, 0, 10)
	nz, tau := v.kind.new(r, amplitude, white)
	sm := &sampler{bursty: v.bursty, acc: [2]float64{20, 60}, follow: v.follow}
	pace := uniform(r, 0.8, 1.5)
	desc = fmt.Sprintf("error %.0f m RMS, tau %v, white %.1f m, pace %.2f m/s", amplitude, tau, white, pace)
	switch v.scene {
	case "parked":
		s.wait(4 * time.Hour)
	case "café":
		s.grid(15*time.Minute, pace)
		stayFrom = s.tr.at
		s.wait(time.Duration(uniform(r, 20, 40) * float64(time.Minute)))
		stayTo = s.tr.at
		s.grid(15*time.Minute, pace)
	default:
		s.grid(50*time.Minute, pace)
	}
	tr = s.sample(sm, nz)
	for range v.jumps {
		f := &tr.fixes[1+r.IntN(len(tr.fixes)-2)]
		d, b := uniform(r, 100, 500), uniform(r, 0, 2*math.Pi)
		f.Lat, f.Lon = moveBy(f.Lat, f.Lon, d*math.Cos(b), d*math.Sin(b))
	}
	return tr, stayFrom, stayTo, desc
}

// Every error kind has the RMS amplitude it is drawn with, and the first-order drift is the rough one:
// over 10 s it moves several times as far as the smooth drift of the same amplitude and time constant.
func TestErrorKinds_HaveTheirAmplitudeAndTheirRoughness(t *testing.T) {
	t.Parallel()
	const amplitude, n = 30.0, 50_000
	measure := func(nz noise) (rms, step float64) {
		r := rand.New(rand.NewPCG(3, 4))
		at := time.Unix(0, 0)
		var pn, pe float64
		for i := range n {
			north, east := nz(r, at)
			rms += north*north + east*east
			if i > 0 {
				step += math.Hypot(north-pn, east-pe)
			}
			pn, pe = north, east
			at = at.Add(10 * time.Second)
		}
		return math.Sqrt(rms / n), step / (n - 1)
	}
	steps := map[string]float64{}
	for _, k := range errorKinds {
		r := rand.New(rand.NewPCG(5, 6))
		nz, tau := k.new(r, amplitude, 0)
		rms, step := measure(nz)
		steps[k.name] = step
		t.Logf("%s (tau %v): RMS %.1f m, mean change over 10 s %.2f m", k.name, tau, rms, step)
		if !within(rms, amplitude, 0.15) {
			t.Errorf("%s: RMS %.1f m, want %.0f m within 15%%", k.name, rms, amplitude)
		}
	}
	smooth, rough := measure(drift(amplitude, 3*time.Minute, 0))
	_, roughStep := measure(ouDrift(amplitude, 3*time.Minute, 0))
	if roughStep < 3*rough {
		t.Errorf("over 10 s the first-order drift moves %.2f m, the smooth one %.2f m (RMS %.1f): want it rougher",
			roughStep, rough, smooth)
	}
}
