// Package webhook delivers the outbox's events to the organizations' webhooks: a worker claims due
// deliveries from Postgres, signs them (Standard Webhooks and the original API's scheme), POSTs them
// through an SSRF-safe client, records every attempt, retries with backoff and jitter, dead-letters after
// the last attempt, and keeps a circuit breaker per webhook.
//
// Delivery is at-least-once and needs no coordination between processes: a claim is a short transaction
// (FOR NO KEY UPDATE SKIP LOCKED) that counts the attempt and moves the delivery's next_retry_at a lease ahead,
// so no lock is held while sending and the claim of a worker that dies simply expires.
package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// txTimeout bounds each of the worker's transactions (claims and records are a few statements).
const txTimeout = 10 * time.Second

// Worker delivers due webhook deliveries. Run it in every server process.
type Worker struct {
	cfg    Config
	pool   *pgxpool.Pool
	q      *db.Queries
	client *http.Client
	log    *slog.Logger
	tracer trace.Tracer
	wake   <-chan struct{}
	live   atomic.Bool
	// A token per busy sender, Run's claims and the listener's hand-off claims alike (see Reserve).
	slots chan struct{}
	runMu sync.Mutex
	run   *running // nil unless Run is delivering
	// The stream position up to which the hand-offs left this worker no delivery to claim (see Deliver
	// and Covered).
	covered atomic.Int64
	// Observe, when set, is told of every recorded attempt: its outcome (success, retry, failed) and how
	// long it took.
	Observe func(outcome string, took time.Duration)
}

// NewWorker returns a worker that reaches Postgres through pool as role fieldtrack_worker. Zero fields of
// cfg take the server's defaults.
func NewWorker(pool *pgxpool.Pool, cfg Config, log *slog.Logger) *Worker {
	cfg = cfg.withDefaults()
	return &Worker{cfg: cfg, pool: pool, q: db.New(), client: newClient(cfg), log: log.With("component", "webhooks"),
		tracer: otel.Tracer(tracerName), slots: make(chan struct{}, cfg.Concurrency)}
}

// running is what a Run shares with the hand-off's claims (Deliver): its context, its senders and where
// their attempts are recorded.
type running struct {
	ctx     context.Context
	senders sync.WaitGroup
	results chan<- *result
}

// WakeOn makes the worker look for due deliveries at once when wake receives (a Notifier's subscription:
// the listener has just recorded deliveries), instead of at its next poll. It returns w.
func (w *Worker) WakeOn(wake <-chan struct{}) *Worker {
	w.wake = wake
	return w
}

// Live reports whether Run is delivering: its loop runs and its last claim reached Postgres.
func (w *Worker) Live() bool { return w.live.Load() }

// claim is a delivery this worker holds for one attempt.
type claim struct {
	db.DeliveryClaimRow
	probe bool // the one attempt a half-open circuit lets through
}

// Run delivers until ctx ends: it claims as many due deliveries as it has free senders, polls every
// PollInterval while there is nothing to do (or until woken, see WakeOn), and on return has waited for its
// senders and recorded their attempts (an attempt interrupted by the end of ctx gives its claim back).
// A sender is busy from the claim until its attempt is recorded; one goroutine records the attempts,
// many in one transaction under load (see recordLoop).
func (w *Worker) Run(ctx context.Context) {
	slots := w.slots
	results := make(chan *result, w.cfg.Concurrency) // never full: each holds a slot
	recorded := make(chan struct{})
	go func() { defer close(recorded); w.recordLoop(results) }()
	run := &running{ctx: ctx, results: results}
	w.runMu.Lock()
	w.run = run
	w.runMu.Unlock()
	senders := &run.senders
	defer func() {
		w.runMu.Lock()
		w.run = nil // Deliver starts no sender from here on
		w.runMu.Unlock()
		senders.Wait()
		close(results)
		<-recorded
	}()
	defer w.live.Store(false)
	release := func() { <-slots }
	failures := 0
	for {
		// Wait for one free sender, then take every other free one.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < cap(slots) {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		claims, scanned, err := w.claim(ctx, n)
		for range n - len(claims) {
			<-slots
		}
		for _, c := range claims {
			senders.Add(1)
			go func() {
				defer senders.Done()
				results <- w.attempt(ctx, c, release)
			}()
		}
		w.live.Store(err == nil)
		wait := time.Duration(0)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait = min(w.cfg.PollInterval<<min(failures, 5), 5*time.Second)
			w.log.Error("claiming due deliveries", "error", err.Error(), "retry_in", wait.String())
		case scanned < n:
			failures = 0
			wait = w.cfg.PollInterval // the queue is drained for now
		default:
			failures = 0
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-w.wake: // the listener recorded deliveries
				t.Stop()
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// Covered is the stream position up to which the hand-offs left this worker no delivery to claim (they
// claimed every one for it): a Notifier subscription made with SubscribeAfter(w.Covered) does not wake
// it for those hand-offs.
func (w *Worker) Covered() int64 { return w.covered.Load() }

// Idle is how many of the worker's senders are free now.
func (w *Worker) Idle() int { return cap(w.slots) - len(w.slots) }

// Lease is how long a claim keeps other workers off a delivery (the hand-off's claims take it too).
func (w *Worker) Lease() time.Duration { return w.cfg.Lease }

// Reserve takes up to n idle senders, at most half of those idle (rounded up), for the deliveries the
// listener's hand-off is about to claim for this worker (EventHandOff's claims, sql/000027), so that each
// has a sender the moment the hand-off commits; Deliver then gives them their work or gives them back. The
// other half stays with the worker's own claims. 0 when the worker is not running, or delivers for one
// organization only (a hand-off's claims are any organization's).
func (w *Worker) Reserve(n int) int {
	w.runMu.Lock()
	defer w.runMu.Unlock()
	if w.run == nil || w.cfg.OrganizationID != uuid.Nil {
		return 0
	}
	n = min(n, (w.Idle()+1)/2)
	got := 0
	for got < n {
		select {
		case w.slots <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

// Deliver makes the first attempts of the deliveries a committed hand-off claimed for this worker, each
// on one of the reserved senders, recorded like any other attempt, and gives back the reserved senders
// it did not need. A worker that stopped meanwhile (shutting down) gives the claims back uncounted, so
// that the next process sends them at once rather than after their lease; should that fail, their lease
// ends and any worker claims them (at-least-once, as for a worker that dies holding claims). upTo > 0
// says that the hand-off left no delivery up to that stream position for a worker to claim: the worker
// need not look (Covered).
func (w *Worker) Deliver(claims []db.DeliveryClaimRow, reserved int, upTo int64) {
	w.runMu.Lock()
	run := w.run
	n := 0
	if run != nil {
		if upTo > w.covered.Load() {
			w.covered.Store(upTo) // one listener, under runMu: no concurrent store
		}
		n = min(len(claims), reserved)
		release := func() { <-w.slots }
		for _, c := range claims[:n] {
			run.senders.Add(1)
			go func() {
				defer run.senders.Done()
				run.results <- w.attempt(run.ctx, claim{DeliveryClaimRow: c}, release)
			}()
		}
	}
	for range reserved - n {
		<-w.slots
	}
	w.runMu.Unlock()
	if unsent := claims[n:]; len(unsent) > 0 {
		w.giveBack(unsent)
	}
}

// giveBack returns claims this worker will not send (release), in one short transaction of its own.
func (w *Worker) giveBack(cs []db.DeliveryClaimRow) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.tx(ctx, func(tx db.DBTX) error { return w.release(ctx, tx, cs) }); err != nil {
		w.log.Warn("giving back the hand-off's claims; they are sent when their lease ends",
			"claims", len(cs), "error", err.Error())
	}
}

// DeliverDue claims one batch of due deliveries (up to Concurrency), makes their attempts concurrently,
// records them together and returns how many attempts it made. Tests and one-shot tools use it; servers
// use Run.
func (w *Worker) DeliverDue(ctx context.Context) (int, error) {
	claims, _, err := w.claim(ctx, w.cfg.Concurrency)
	if err != nil {
		return 0, err
	}
	var (
		mu sync.Mutex
		rs []*result // in the order the attempts ended
		wg sync.WaitGroup
	)
	for _, c := range claims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := w.attempt(ctx, c, nil)
			mu.Lock()
			rs = append(rs, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	w.recordAll(rs)
	return len(claims), nil
}

// webhookKey identifies a webhook across organizations.
type webhookKey struct{ org, id uuid.UUID }

// claim takes up to max due deliveries in one short transaction, in the common case one statement that
// claims every due delivery of an active webhook with a closed circuit. Deliveries of an inactive webhook
// or an open circuit are parked until they can be sent; of a half-open circuit only one (the probe) is
// claimed. webhook.test deliveries go whatever the state. scanned is how many due rows were looked at.
func (w *Worker) claim(ctx context.Context, max int) (claims []claim, scanned int, err error) {
	err = w.tx(ctx, func(tx db.DBTX) error {
		var org *uuid.UUID
		if w.cfg.OrganizationID != uuid.Nil {
			org = &w.cfg.OrganizationID
		}
		lease := w.cfg.Lease.Seconds()
		due, err := w.q.DeliveryClaimDue(ctx, tx, db.DeliveryClaimDueParams{OrganizationID: org,
			MaxRows: int32(max), LeaseSeconds: lease})
		if err != nil {
			return err
		}
		scanned = len(due)
		var take, park, probe ids
		probes := map[webhookKey]uuid.UUID{}
		for _, d := range due {
			key := webhookKey{d.OrganizationID, d.WebhookID}
			switch {
			case d.Claimed:
				claims = append(claims, claim{DeliveryClaimRow: db.DeliveryClaimRow{OrganizationID: d.OrganizationID,
					ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType,
					AttemptCount: d.AttemptCount, Url: d.Url, Secret: d.Secret, Payload: d.Payload,
					TraceContext: d.TraceContext}})
			case !d.IsActive || d.Circuit == "open":
				park.add(d.OrganizationID, d.ID)
			default: // half-open
				if _, probing := probes[key]; probing {
					park.add(d.OrganizationID, d.ID)
					continue
				}
				probes[key] = d.ID
				probe.add(d.OrganizationID, d.WebhookID)
				take.add(d.OrganizationID, d.ID)
			}
		}
		if len(probe.ids) > 0 {
			// Until the probe reports, the circuit counts as open; the others park behind it.
			err := w.q.WebhookMarkProbing(ctx, tx, db.WebhookMarkProbingParams{
				LeaseSeconds: lease, OrganizationIds: probe.orgs, Ids: probe.ids})
			if err != nil {
				return err
			}
		}
		if len(park.ids) > 0 {
			if err := w.q.DeliveryPark(ctx, tx, db.DeliveryParkParams{OrganizationIds: park.orgs, Ids: park.ids}); err != nil {
				return err
			}
		}
		if len(take.ids) == 0 {
			return nil
		}
		rows, err := w.q.DeliveryClaim(ctx, tx, db.DeliveryClaimParams{
			LeaseSeconds: lease, OrganizationIds: take.orgs, Ids: take.ids})
		if err != nil {
			return err
		}
		for _, r := range rows {
			claims = append(claims, claim{DeliveryClaimRow: r, probe: probes[webhookKey{r.OrganizationID, r.WebhookID}] == r.ID})
		}
		return nil
	})
	return claims, scanned, err
}

// ids collects composite keys for the array parameters of the worker's queries.
type ids struct{ orgs, ids []uuid.UUID }

func (s *ids) add(org, id uuid.UUID) { s.orgs, s.ids = append(s.orgs, org), append(s.ids, id) }

// attempt makes the attempt of a claim, under its span; done (if any) is called once it is recorded.
func (w *Worker) attempt(ctx context.Context, c claim, done func()) *result {
	ctx, span := w.startAttempt(ctx, c)
	return &result{claim: c, o: w.send(ctx, c.DeliveryClaimRow), ctx: ctx, span: span, done: done}
}

// record stores one attempt and its consequences in one transaction (see store) and returns the
// delivery's new status.
func (w *Worker) record(ctx context.Context, c claim, o outcome) (status string, err error) {
	r := &result{claim: c, o: o}
	err = w.store(ctx, []*result{r})
	return r.status, err
}

// updateWebhook applies an attempt to its webhook: a success closes the circuit (waking the deliveries
// parked behind it), a 410 disables the webhook, any other failure counts towards opening the circuit.
func (w *Worker) updateWebhook(ctx context.Context, tx db.DBTX, c claim, o outcome) error {
	switch o.verdict {
	case delivered:
		parkedUntil, err := w.q.WebhookRecordSuccess(ctx, tx, db.WebhookRecordSuccessParams{
			OrganizationID: c.OrganizationID, ID: c.WebhookID})
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && parkedUntil == nil) {
			return nil // it was healthy already
		}
		if err != nil {
			return err
		}
		return w.q.DeliveryWake(ctx, tx, db.DeliveryWakeParams{
			OrganizationID: c.OrganizationID, WebhookID: c.WebhookID, WaitUntil: parkedUntil})
	case gone:
		return w.q.WebhookDisable(ctx, tx, db.WebhookDisableParams{
			OrganizationID: c.OrganizationID, ID: c.WebhookID,
			Reason: nonEmpty("the endpoint answered 410 Gone at " + time.Now().UTC().Format(time.RFC3339))})
	default:
		_, err := w.q.WebhookRecordFailure(ctx, tx, db.WebhookRecordFailureParams{
			OrganizationID: c.OrganizationID, ID: c.WebhookID, Probe: c.probe,
			Threshold: int32(w.cfg.CircuitThreshold), OpenSeconds: w.cfg.CircuitOpen.Seconds(),
			MaxOpenSeconds: max(maxCircuitOpen, w.cfg.CircuitOpen).Seconds(),
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // the webhook was deleted meanwhile
		}
		return err
	}
}

// tx runs fn as the worker role, which sees the webhook tables of every organization and nothing else,
// with the planner held to the due index's order and primary-key probes (WorkerPlanByIndex: one more
// round trip, far cheaper than one claim planned for a table that has since grown).
func (w *Worker) tx(ctx context.Context, fn func(db.DBTX) error) error {
	// Asynchronous commit: a claim or a record lost in a crash only means the delivery is sent again
	// when its lease ends (at-least-once), and waiting for the WAL flush would cap throughput.
	return db.InTx(ctx, w.pool, db.Claims{}, db.TxOptions{Role: db.WorkerRole, StatementTimeout: txTimeout,
		AsyncCommit: true}, func(tx db.DBTX) error {
		if err := w.q.WorkerPlanByIndex(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
