package webhook

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// result is an attempt that was made (or interrupted) and waits to be recorded.
type result struct {
	claim
	o      outcome
	ctx    context.Context // the attempt's, under its span
	span   trace.Span
	done   func() // when not nil, called once the attempt is recorded or recording it failed
	status string // the delivery's new status: success, pending, failed, or aborted (claim given back)
	retry  time.Duration
	// storeErr is why this attempt alone was not recorded, when its batch could not be (see store).
	storeErr error
}

// maxRecordBatch bounds the attempts recorded in one transaction (Run never has more than Concurrency
// waiting).
const maxRecordBatch = 256

// recordAttempts are the tries of one batch's transaction when Postgres aborts it for a deadlock or a
// serialization failure (two processes' batches locking the same webhooks in another order).
const recordAttempts = 3

// recordLoop records what arrives on in until in is closed. Whatever has arrived when it is free goes in
// one transaction: a lone attempt is recorded at once, and under load one write transaction records
// many attempts while the next ones queue. That is what lets one worker keep up with thousands of
// deliveries a second on a small machine: a transaction per attempt costs Postgres more than the
// attempt's rows.
func (w *Worker) recordLoop(in <-chan *result) {
	batch := make([]*result, 0, maxRecordBatch)
	for r := range in {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxRecordBatch {
			select {
			case r, ok := <-in:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.recordAll(batch)
		clear(batch) // let the claims' payloads go
	}
}

// recordAll records a batch of attempts in one transaction, then ends their spans, counts them in the
// metrics, logs them and calls their done functions. Recording outlives the attempts' contexts (briefly):
// an attempt that was made is worth knowing about even during shutdown. The transaction belongs to no
// one attempt's trace.
func (w *Worker) recordAll(rs []*result) {
	if len(rs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), txTimeout)
	defer cancel()
	err := w.store(ctx, rs)
	for _, r := range rs {
		w.report(r, cmp.Or(r.storeErr, err))
		if r.done != nil {
			r.done()
		}
	}
}

// report ends an attempt's span and logs it; a recorded attempt (not one given back) is counted by
// Observe.
func (w *Worker) report(r *result, err error) {
	endAttempt(r.span, r.o, r.status, err)
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	log := func() []any {
		return []any{"delivery_id", r.ID, "webhook_id", r.WebhookID, "event_id", r.EventID, "attempt", r.AttemptCount}
	}
	switch {
	case r.status == "aborted":
		if err != nil {
			w.log.WarnContext(ctx, "giving back an interrupted claim (it expires by itself)",
				append(log(), "error", err.Error())...)
		}
		return
	case err != nil:
		w.log.ErrorContext(ctx, "recording a delivery attempt", append(log(), "error", err.Error())...)
		return
	}
	if w.Observe != nil {
		outcome := r.status
		if r.status != "success" && r.status != "failed" {
			outcome = "retry"
		}
		w.Observe(outcome, r.o.duration)
	}
	switch r.status {
	case "success":
		w.log.DebugContext(ctx, "webhook delivered", append(log(), "status", r.o.status,
			"duration_ms", r.o.duration.Milliseconds())...)
	case "failed":
		w.log.WarnContext(ctx, "webhook delivery dead-lettered", append(log(), "status", r.o.status,
			"error", r.o.logged())...)
	default:
		w.log.InfoContext(ctx, "webhook attempt failed; will retry", append(log(), "status", r.o.status,
			"error", r.o.logged())...)
	}
}

// decide sets the delivery's new status after r's attempt, and when it is retried, how much later.
func (w *Worker) decide(r *result) {
	r.status, r.retry = "pending", 0
	switch {
	case r.o.verdict == aborted:
		r.status = "aborted"
	case r.o.verdict == delivered:
		r.status = "success"
	case r.o.verdict == permanent || r.o.verdict == gone || int(r.AttemptCount) >= w.cfg.MaxAttempts:
		r.status = "failed"
	default:
		r.retry = w.cfg.retryDelay(int(r.AttemptCount), r.o.retryAfter, jitter)
	}
}

// store records a batch of attempts and their consequences in one transaction (retried when Postgres
// aborts it for a deadlock): their webhooks' circuit breakers (or disabling on 410), one attempt log row
// each, and each delivery's new state (success, pending with its next retry, or failed); an interrupted
// attempt gives its claim back. The result is the same as recording the attempts one by one in the
// order of rs. It sets each result's status. When the batch cannot be recorded for another reason (a
// delivery deleted with its webhook meanwhile, say), each attempt is recorded on its own, so one that
// cannot be costs the others nothing (a result's storeErr says why it was not recorded).
func (w *Worker) store(ctx context.Context, rs []*result) error {
	for _, r := range rs {
		w.decide(r)
	}
	err := w.storeTxRetrying(ctx, rs)
	if err == nil || len(rs) == 1 || ctx.Err() != nil {
		return err
	}
	for _, r := range rs {
		r.storeErr = w.storeTxRetrying(ctx, []*result{r})
	}
	return nil
}

// storeTxRetrying is storeTx in a transaction, tried again when Postgres aborts it for a deadlock or a
// serialization failure.
func (w *Worker) storeTxRetrying(ctx context.Context, rs []*result) error {
	var err error
	for try := range recordAttempts {
		if try > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(try*try) * 20 * time.Millisecond):
			}
		}
		err = w.tx(ctx, func(tx db.DBTX) error { return w.storeTx(ctx, tx, rs) })
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return err
		}
	}
	return err
}

func (w *Worker) storeTx(ctx context.Context, tx db.DBTX, rs []*result) error {
	// The webhook rows first: an admin's update locks a webhook before its deliveries too, so the two
	// cannot deadlock. A webhook with only successes in the batch (the common case) is reset by the
	// batch's statement, which writes nothing when it was healthy; the attempts on a webhook with a
	// failure among them are applied one by one before it, in order, so its circuit breaker counts
	// exactly as it would have.
	failing := map[webhookKey]bool{}
	for _, r := range rs {
		if r.o.verdict != delivered && r.o.verdict != aborted {
			failing[webhookKey{r.OrganizationID, r.WebhookID}] = true
		}
	}
	var seq []*result
	var healthyKeys []webhookKey
	seen := map[webhookKey]bool{}
	for _, r := range rs {
		key := webhookKey{r.OrganizationID, r.WebhookID}
		switch {
		case r.o.verdict == aborted:
		case failing[key]:
			seq = append(seq, r)
		case !seen[key]:
			seen[key] = true
			healthyKeys = append(healthyKeys, key)
		}
	}
	// Webhooks in key order (a failing one's attempts in their order), so that two processes' batches
	// tend to lock them in the same order; a deadlock all the same is retried (see store).
	slices.SortStableFunc(seq, func(a, b *result) int {
		return compareKeys(webhookKey{a.OrganizationID, a.WebhookID}, webhookKey{b.OrganizationID, b.WebhookID})
	})
	slices.SortFunc(healthyKeys, compareKeys)
	var healthy ids
	for _, k := range healthyKeys {
		healthy.add(k.org, k.id)
	}
	for _, r := range seq {
		if err := w.updateWebhook(ctx, tx, r.claim, r.o); err != nil {
			return err
		}
	}

	p := db.DeliveryRecordBatchParams{HealthyOrganizationIds: healthy.orgs, HealthyIds: healthy.ids}
	var released []db.DeliveryClaimRow
	for _, r := range rs {
		if r.status == "aborted" {
			released = append(released, r.DeliveryClaimRow)
			continue
		}
		p.OrganizationIds = append(p.OrganizationIds, r.OrganizationID)
		p.Ids = append(p.Ids, r.ID)
		p.Attempts = append(p.Attempts, r.AttemptCount)
		p.Statuses = append(p.Statuses, r.status)
		p.ResponseStatuses = append(p.ResponseStatuses, int32(r.o.status))
		p.ResponseBodies = append(p.ResponseBodies, r.o.body)
		p.Errors = append(p.Errors, r.o.err)
		p.DurationsMs = append(p.DurationsMs, int32(r.o.duration.Milliseconds()))
		p.RetryInSeconds = append(p.RetryInSeconds, r.retry.Seconds())
	}
	if len(p.Ids) > 0 {
		closed, err := w.q.DeliveryRecordBatch(ctx, tx, p)
		if err != nil {
			return err
		}
		for _, c := range closed { // circuits this batch's successes closed: their parked deliveries go now
			if c.CircuitOpenUntil == nil {
				continue
			}
			err := w.q.DeliveryWake(ctx, tx, db.DeliveryWakeParams{
				OrganizationID: c.OrganizationID, WebhookID: c.ID, WaitUntil: c.CircuitOpenUntil})
			if err != nil {
				return err
			}
		}
	}
	return w.release(ctx, tx, released)
}

// release gives claims back untried: due now, their attempt not counted (DeliveryRelease).
func (w *Worker) release(ctx context.Context, tx db.DBTX, cs []db.DeliveryClaimRow) error {
	for _, c := range cs {
		err := w.q.DeliveryRelease(ctx, tx, db.DeliveryReleaseParams{
			OrganizationID: c.OrganizationID, ID: c.ID, Attempt: c.AttemptCount})
		if err != nil {
			return err
		}
	}
	return nil
}

// compareKeys orders webhooks as Postgres orders their primary key (uuids bytewise).
func compareKeys(a, b webhookKey) int {
	if c := bytes.Compare(a.org[:], b.org[:]); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}
