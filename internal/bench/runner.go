package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// work does one unit of a phase (one transaction or one request) and reports the rows it inserted.
// dup reports a 2xx answer that inserted nothing because the fix was already stored.
type work func(ctx context.Context) (rows int, dup bool, err error)

// phase is one workload: newWorker(w) returns the loop body of worker w. It is called once per worker
// and per run (warm-up and measured run), so a worker's state lives in its closure.
type phase struct {
	id        string // A1, B1, ...
	path      string // what is measured, for the table
	api       bool   // HTTP phase (true) or raw SQL phase
	batch     int    // fixes per unit
	newWorker func(w int) work
}

// result is what a run of a phase measured.
type result struct {
	ops, rows, dups, errors int64
	elapsed                 time.Duration   // from start until the last worker returned
	latencies               []time.Duration // every unit's latency, sorted (errors included)
	firstErr                string
	cpu                     cpuUse
}

// maxOpsPerWorker bounds a worker's loop in count as the phase duration bounds it in time.
const maxOpsPerWorker = 2_000_000

// grace is how long units in flight at the end of a phase may take before their context is cancelled.
const grace = 30 * time.Second

// run starts workers goroutines that repeat p's unit until d has passed, and collects every latency.
// Units in flight at the deadline finish and count; elapsed includes them.
func run(ctx context.Context, p phase, workers int, d time.Duration) result {
	ctx, cancel := context.WithTimeout(ctx, d+grace)
	defer cancel()
	type workerResult struct {
		result
		lat []time.Duration
	}
	out := make([]workerResult, workers)
	fns := make([]work, workers)
	for w := range workers {
		fns[w] = p.newWorker(w)
	}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := &out[w]
			for i := 0; i < maxOpsPerWorker && ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				rows, dup, err := fns[w](ctx)
				r.lat = append(r.lat, time.Since(t0))
				r.ops++
				switch {
				case err != nil:
					r.errors++
					if r.firstErr == "" {
						r.firstErr = err.Error()
					}
				case dup:
					r.dups++
				}
				r.rows += int64(rows)
			}
		})
	}
	wg.Wait()
	total := result{elapsed: time.Since(start)}
	for _, r := range out {
		total.ops += r.ops
		total.rows += r.rows
		total.dups += r.dups
		total.errors += r.errors
		total.latencies = append(total.latencies, r.lat...)
		if total.firstErr == "" {
			total.firstErr = r.firstErr
		}
	}
	slices.Sort(total.latencies)
	return total
}

// percentile returns the nearest-rank p-quantile (0 < p <= 1) of sorted latencies, 0 when empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*p)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// perSecond is n per second of elapsed.
func (r result) perSecond(n int64) float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(n) / r.elapsed.Seconds()
}
