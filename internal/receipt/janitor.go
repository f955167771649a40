package receipt

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// Janitor removes receipts never attached to an expense once their upload URL has expired, and the
// files of every receipt deleted (by it, or with its organization, employee or expense). Several
// processes may run one, sharing the store: each takes the rows it works on with SKIP LOCKED.
type Janitor struct {
	pool     *pgxpool.Pool
	store    Store
	log      *slog.Logger
	q        *db.Queries
	interval time.Duration
	live     atomic.Bool
}

// NewJanitor returns a janitor that sweeps every interval.
func NewJanitor(pool *pgxpool.Pool, store Store, interval time.Duration, log *slog.Logger) *Janitor {
	return &Janitor{pool: pool, store: store, log: log.With("component", "receipts"), q: db.New(), interval: interval}
}

// Live reports whether the last sweep worked.
func (j *Janitor) Live() bool { return j.live.Load() }

// Run sweeps until ctx ends.
func (j *Janitor) Run(ctx context.Context) {
	t := time.NewTicker(j.interval)
	defer t.Stop()
	for {
		n, err := j.sweepAll(ctx)
		j.live.Store(err == nil)
		switch {
		case err != nil && ctx.Err() == nil:
			j.log.Warn("removing expired receipt uploads", "error", err.Error())
		case n > 0:
			j.log.Info("removed expired receipt uploads", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepAll sweeps until a sweep finds less than a full batch of each kind (or 100 sweeps are done, the
// rest waiting for the next tick), and returns how many receipts it removed.
func (j *Janitor) sweepAll(ctx context.Context) (int, error) {
	total := 0
	for range 100 {
		expired, files, err := j.sweep(ctx)
		total += expired
		if err != nil || (expired < sweepBatch && files < sweepBatch) {
			return total, err
		}
	}
	return total, nil
}

// sweepBatch is how many receipts, and how many files, one sweep removes at most.
const sweepBatch = 100

// Sweep removes up to sweepBatch expired, unattached receipts and up to sweepBatch files of receipts
// that are gone, and returns how many receipts it removed.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	n, _, err := j.sweep(ctx)
	return n, err
}

// sweep deletes expired receipts (the delete queues their files), then removes queued files: each file
// before it is forgotten, so a crash in between only repeats the work.
func (j *Janitor) sweep(ctx context.Context) (expired, files int, err error) {
	worker := db.TxOptions{Role: db.WorkerRole, StatementTimeout: 30 * time.Second}
	n, err := db.Do(ctx, j.pool, db.Claims{}, worker, func(tx db.DBTX) (int64, error) {
		return j.q.ReceiptExpire(ctx, tx, sweepBatch)
	})
	if err != nil {
		return 0, 0, err
	}
	err = db.InTx(ctx, j.pool, db.Claims{}, worker, func(tx db.DBTX) error {
		keys, err := j.q.ReceiptFilesGone(ctx, tx, sweepBatch)
		if err != nil || len(keys) == 0 {
			return err
		}
		for _, k := range keys {
			if err := j.store.Delete(ctx, k); err != nil {
				return err
			}
		}
		files = len(keys)
		return j.q.ReceiptFilesRemoved(ctx, tx, keys)
	})
	return int(n), files, err
}
