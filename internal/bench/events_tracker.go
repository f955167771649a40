package bench

import (
	"math"
	"slices"
	"sync"
	"time"
)

// missing stands for "never arrived" among latencies; it sorts last.
const missing = time.Duration(math.MaxInt64)

// tracker holds, per event (indexed by sequence number), when its commit returned and when the SSE
// client and the receiver first saw it, as offsets from base (monotonic clock; 0 = not yet).
type tracker struct {
	base time.Time

	mu                  sync.Mutex
	commit, sse, hook   []time.Duration
	hookIDs             map[string]struct{}
	attempts, repeated  int64 // webhook requests received; of them, a webhook-id seen before
	hookStray, sseStray int64 // requests or frames that name no event of this run
}

func newTracker(n int64) *tracker {
	return &tracker{base: time.Now(), commit: make([]time.Duration, n), sse: make([]time.Duration, n),
		hook: make([]time.Duration, n), hookIDs: make(map[string]struct{}, n)}
}

// now is the current offset; never 0, which means "not yet".
func (t *tracker) now() time.Duration { return max(time.Since(t.base), 1) }

// offset converts a wall-clock time (from Postgres) to an offset of this tracker.
func (t *tracker) offset(wall time.Time) time.Duration { return wall.Sub(t.base.Round(0)) }

func (t *tracker) committed(first, n int64, at time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := first; s < first+n && s < int64(len(t.commit)); s++ {
		t.commit[s] = at
	}
}

// committedAt is when seq's commit returned (0: not yet, or never).
func (t *tracker) committedAt(seq int64) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq < 0 || seq >= int64(len(t.commit)) {
		return 0
	}
	return t.commit[seq]
}

func (t *tracker) sawSSE(seq int64, at time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq < 0 || seq >= int64(len(t.sse)) {
		t.sseStray++
		return
	}
	if t.sse[seq] == 0 {
		t.sse[seq] = at
	}
}

// sawHook records a webhook request: the first one per webhook-id (the event id, the same on every
// attempt) is the event's first attempt.
func (t *tracker) sawHook(id string, seq int64, at time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.attempts++
	if _, seen := t.hookIDs[id]; seen {
		t.repeated++
		return
	}
	t.hookIDs[id] = struct{}{}
	if id == "" || seq < 0 || seq >= int64(len(t.hook)) {
		t.hookStray++
		return
	}
	if t.hook[seq] == 0 {
		t.hook[seq] = at
	}
}

// outstanding counts the committed events in [lo, hi) that the SSE client and the receiver have not seen.
func (t *tracker) outstanding(lo, hi int64) (sse, hook int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := lo; s < hi; s++ {
		if t.commit[s] == 0 {
			continue
		}
		if t.sse[s] == 0 {
			sse++
		}
		if t.hook[s] == 0 {
			hook++
		}
	}
	return sse, hook
}

// latencies lists to[s] - from[s] for every event s in [lo, hi) that has a from time, sorted; an event
// without a to time counts as missing.
func latencies(from, to []time.Duration, lo, hi int64) []time.Duration {
	var out []time.Duration
	for s := lo; s < hi; s++ {
		switch {
		case from[s] == 0:
		case to[s] == 0:
			out = append(out, missing)
		default:
			out = append(out, to[s]-from[s])
		}
	}
	slices.Sort(out)
	return out
}
