package receipt

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// Janitor removes receipts never attached to an expense once their upload URL has expired: first the
// file, then the row, so a crash in between only repeats the work. Several processes may run one: each
// takes the rows it removes with SKIP LOCKED.
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
		n, err := j.Sweep(ctx)
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

// Sweep removes up to 100 expired, unattached receipts and returns how many.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	var removed int
	err := db.InTx(ctx, j.pool, db.Claims{}, db.TxOptions{Role: db.WorkerRole, StatementTimeout: 30 * time.Second},
		func(tx db.DBTX) error {
			expired, err := j.q.ReceiptExpired(ctx, tx, 100)
			if err != nil || len(expired) == 0 {
				return err
			}
			orgs, ids := make([]uuid.UUID, len(expired)), make([]uuid.UUID, len(expired))
			for i, r := range expired {
				if err := j.store.Delete(ctx, r.StorageKey); err != nil {
					return err
				}
				orgs[i], ids[i] = r.OrganizationID, r.ID
			}
			removed = len(ids)
			return j.q.ReceiptDelete(ctx, tx, db.ReceiptDeleteParams{OrganizationIds: orgs, Ids: ids})
		})
	return removed, err
}
