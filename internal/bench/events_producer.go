package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// producerTick is the pacing period: each tick releases the transactions due by then, so the average rate
// is exact however coarse the ticks are.
const producerTick = 5 * time.Millisecond

// production is what one run of the producer did.
type production struct {
	first, planned int64 // the sequence numbers [first, first+planned) were scheduled
	txs, events    int64 // committed
	errors         int64 // failed transactions
	shortfall      int64 // scheduled events never sent: the producers were still behind at the deadline
	firstErr       string
	elapsed        time.Duration   // from the start until the last commit returned
	commitLat      []time.Duration // round trip of each committed transaction, sorted
	cpu            cpuUse
}

func (p production) rate() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.events) / p.elapsed.Seconds()
}

// plannedTx is the number of transactions of perTx events that make rate events/s for d.
func plannedTx(rate, perTx int, d time.Duration) int64 {
	return int64(math.Round(float64(rate) * d.Seconds() / float64(perTx)))
}

// producerCount is how many connections commit in parallel: enough that a slow commit (an fsync) does not
// hold the schedule up, about one per 50 transactions a second.
func producerCount(rate, perTx int) int { return min(32, max(4, rate/perTx/50)) }

// produce commits plannedTx(rate, perTx, d) transactions starting at sequence number first, for
// orgOf(seq) (the transaction's first sequence number), releasing
// them on a schedule of rate events/s to producers connections. A transaction whose time has come waits in
// a queue of one second's worth while every producer is busy; what is still unsent at the deadline is the
// shortfall. Latency is measured from each commit, so queueing here does not count against the pipeline.
func produce(ctx context.Context, pool *pgxpool.Pool, orgOf func(seq int64) uuid.UUID, tr *tracker, first int64, rate, perTx int,
	d time.Duration, producers int) production {
	totalTx := plannedTx(rate, perTx, d)
	p := production{first: first, planned: totalTx * int64(perTx)}
	if totalTx == 0 {
		return p
	}
	jobs := make(chan int64, max(1, rate/perTx))
	type worker struct {
		txs, errs int64
		firstErr  string
		lat       []time.Duration
		last      time.Time
	}
	ws := make([]worker, producers)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range producers {
		wg.Go(func() {
			w := &ws[i]
			for seq := range jobs {
				t0 := time.Now()
				var n int64
				err := pool.QueryRow(ctx, emitSQL, orgOf(seq), seq, seq+int64(perTx)-1).Scan(&n)
				t1 := time.Now()
				if err == nil && n != int64(perTx) {
					err = fmt.Errorf("app.emit ran %d times, want %d", n, perTx)
				}
				if err != nil {
					w.errs++
					if w.firstErr == "" {
						w.firstErr = err.Error()
					}
					continue
				}
				tr.committed(seq, int64(perTx), max(t1.Sub(tr.base), 1))
				w.txs++
				w.lat = append(w.lat, t1.Sub(t0))
				w.last = t1
			}
		})
	}

	deadline := start.Add(d)
	ticker := time.NewTicker(producerTick)
	var sent int64
schedule:
	for sent < totalTx {
		select {
		case <-ctx.Done():
			break schedule
		case <-ticker.C:
		}
		now := time.Now()
		due := min(totalTx, int64(now.Sub(start).Seconds()*float64(rate)/float64(perTx)))
		if !now.Before(deadline) {
			due = totalTx
		}
	release:
		for sent < due {
			select {
			case jobs <- first + sent*int64(perTx):
				sent++
			default:
				break release // every producer busy and a second's worth queued
			}
		}
		if !now.Before(deadline) {
			break
		}
	}
	ticker.Stop()
	close(jobs)
	wg.Wait()

	p.shortfall = (totalTx - sent) * int64(perTx)
	var last time.Time
	for _, w := range ws {
		p.txs += w.txs
		p.errors += w.errs
		p.commitLat = append(p.commitLat, w.lat...)
		if p.firstErr == "" {
			p.firstErr = w.firstErr
		}
		if w.last.After(last) {
			last = w.last
		}
	}
	p.events = p.txs * int64(perTx)
	p.elapsed = time.Since(start)
	if !last.IsZero() {
		p.elapsed = last.Sub(start)
	}
	slices.Sort(p.commitLat)
	return p
}
