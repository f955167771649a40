package webhook

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
	"github.com/fieldtrack/fieldtrack/internal/webhook/webhooktest"
)

// One batch records the outcomes of attempts on several webhooks in one transaction: every delivery gets
// its own outcome and its attempt row, and each webhook's circuit breaker counts only its own attempts.
func TestRecord_OneBatchKeepsEveryOutcomeAndItsAttempt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	down := webhooktest.NewReceiver(t)
	down.Always(http.StatusServiceUnavailable)
	gone := webhooktest.NewReceiver(t)
	gone.Always(http.StatusGone)
	failing, disabled := f.newWebhook(down.URL+"/down"), f.newWebhook(gone.URL+"/gone")
	// Every event goes to all three webhooks.
	var ok, retried, dead []uuid.UUID
	for range 4 {
		event, d := f.event(f.hook)
		ok = append(ok, d)
		retried = append(retried, f.deliveryOf(event, failing))
		dead = append(dead, f.deliveryOf(event, disabled))
	}
	c := f.config()
	c.Concurrency, c.CircuitThreshold = 12, 10
	n, err := f.worker(c).DeliverDue(context.Background())
	if err != nil || n != 12 {
		t.Fatalf("DeliverDue = %d, %v; want 12 attempts in one batch", n, err)
	}
	for _, id := range ok {
		if d := f.delivery(id); d.Status != "success" || d.Attempts != 1 || *d.ResponseStatus != 200 {
			t.Errorf("delivery to the healthy webhook: %+v", d)
		}
		if got := f.attempts(id); len(got) != 1 || got[0] != 200 {
			t.Errorf("attempt log of %s: %v", id, got)
		}
	}
	for _, id := range retried {
		if d := f.delivery(id); d.Status != "pending" || d.Attempts != 1 || *d.ResponseStatus != 503 || d.NextRetryAt == nil {
			t.Errorf("delivery to the failing webhook: %+v", d)
		}
		if got := f.attempts(id); len(got) != 1 || got[0] != 503 {
			t.Errorf("attempt log of %s: %v", id, got)
		}
	}
	for _, id := range dead {
		if d := f.delivery(id); d.Status != "failed" || *d.ResponseStatus != 410 {
			t.Errorf("delivery to the gone webhook: %+v", d)
		}
		if got := f.attempts(id); len(got) != 1 || got[0] != 410 {
			t.Errorf("attempt log of %s: %v", id, got)
		}
	}
	if h := f.webhook(f.hook); h.Streak != 0 || h.OpenUntil != nil || !h.Active {
		t.Errorf("healthy webhook after the batch: %+v", h)
	}
	if h := f.webhook(failing); h.Streak != 4 || h.OpenUntil != nil {
		t.Errorf("failing webhook after 4 failures (threshold 10): %+v", h)
	}
	if h := f.webhook(disabled); h.Active {
		t.Errorf("a 410 must disable its webhook: %+v", h)
	}
}

// A success in a batch closes the circuit of a webhook that was failing and wakes the deliveries parked
// behind it.
func TestRecord_BatchSuccessClosesTheCircuitAndWakesParkedDeliveries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, probe := f.event(f.hook)
	_, parked := f.event(f.hook)
	// The circuit's open period has just ended (half-open); both deliveries are due, the probe first.
	f.exec(`UPDATE webhooks SET failure_streak = 7, circuit_open_until = now() - interval '1 second'
		WHERE organization_id = $1 AND id = $2`, f.org.ID, f.hook)
	f.exec(`UPDATE webhook_deliveries SET next_retry_at = now() - CASE WHEN id = $2 THEN interval '2 seconds'
		ELSE interval '1 second' END WHERE organization_id = $1`, f.org.ID, probe)
	w := f.worker(f.config())
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("half-open DeliverDue = %d, %v; want the probe alone", n, err)
	}
	if d := f.delivery(probe); d.Status != "success" {
		t.Fatalf("the probe: %+v", d)
	}
	if h := f.webhook(f.hook); h.Streak != 0 || h.OpenUntil != nil {
		t.Fatalf("circuit after a successful probe: %+v", h)
	}
	if d := f.delivery(parked); d.NextRetryAt.After(d.Now) {
		t.Fatalf("the delivery parked behind the circuit was not woken: %+v", d)
	}
	f.until(w, "the parked delivery to go", func() bool { return f.delivery(parked).Status == "success" })
}

// Run under load: every delivery is sent once and recorded once (no repeat in normal operation), with
// its attempt row, however the recorder batches them.
func TestRun_DeliversABurstOnceEach(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n = 300
	f.exec(`SELECT count(app.emit($1, 'employee.created', jsonb_build_object('employee_id', gen_random_uuid(), 'seq', s)))
		FROM generate_series(1, $2) s`, f.org.ID, n)
	webhooktest.Dispatch(t, f.pool, f.org.ID)
	c := f.config()
	c.Concurrency = 16
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.worker(c).Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testfactory.Eventually(t, wait, "the burst to be delivered", func() (bool, error) {
		var left int
		err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries
			WHERE organization_id = $1 AND status <> 'success'`, f.org.ID).Scan(&left)
		return left == 0, err
	})
	seen := map[string]int{}
	for _, r := range f.rc.Requests() {
		seen[r.Header.Get("webhook-id")]++
	}
	if len(seen) != n || f.rc.Count() != n {
		t.Fatalf("receiver got %d requests for %d events, want %d once each", f.rc.Count(), len(seen), n)
	}
	var attempts, counted int
	if err := f.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM webhook_delivery_attempts
			WHERE organization_id = $1), (SELECT sum(attempt_count) FROM webhook_deliveries WHERE organization_id = $1)`,
		f.org.ID).Scan(&attempts, &counted); err != nil {
		t.Fatal(err)
	}
	if attempts != n || counted != n {
		t.Fatalf("%d attempt rows and %d attempts counted for %d deliveries", attempts, counted, n)
	}
}

// A worker that dies after sending and before recording loses nothing: its claim comes due when the
// lease ends and the delivery is sent again (a repeat with the same webhook-id, which at-least-once
// allows), then recorded.
func TestRecord_CrashBetweenSendAndRecordRepeatsTheDelivery(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	event, delivery := f.event(f.hook)
	dead := f.worker(f.config())
	claims, _, err := dead.claim(context.Background(), 4)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claim = %v, %v", claims, err)
	}
	if r := dead.attempt(context.Background(), claims[0], nil); r.o.verdict != delivered {
		t.Fatalf("the attempt: %+v", r.o)
	}
	// The process dies here: the outcome is never recorded. Its lease runs out.
	if d := f.delivery(delivery); d.Status != "pending" || d.Attempts != 1 {
		t.Fatalf("delivery after the unrecorded attempt: %+v", d)
	}
	f.exec(`UPDATE webhook_deliveries SET next_retry_at = now() WHERE organization_id = $1 AND id = $2`, f.org.ID, delivery)
	f.until(f.worker(f.config()), "the delivery to succeed after the crash", func() bool {
		return f.delivery(delivery).Status == "success"
	})
	reqs := f.rc.Requests()
	if len(reqs) != 2 || reqs[0].Header.Get("webhook-id") != event.String() || reqs[1].Header.Get("webhook-id") != event.String() {
		t.Fatalf("receiver got %d requests, want the event twice with the same webhook-id", len(reqs))
	}
	if d := f.delivery(delivery); d.Attempts != 2 {
		t.Fatalf("delivery after the repeat: %+v", d)
	}
}

// deliveryOf is the delivery of event to webhook hook.
func (f *fixture) deliveryOf(event, hook uuid.UUID) uuid.UUID {
	f.t.Helper()
	var id uuid.UUID
	if err := f.pool.QueryRow(context.Background(), `SELECT id FROM webhook_deliveries
		WHERE organization_id = $1 AND event_id = $2 AND webhook_id = $3`, f.org.ID, event, hook).Scan(&id); err != nil {
		f.t.Fatalf("no delivery of event %s to webhook %s: %v", event, hook, err)
	}
	return id
}

// An attempt that its batch cannot record (here an answer Postgres refuses to store; in production a
// delivery deleted with its webhook after the batch's snapshot) costs the other attempts of the batch
// nothing: they are recorded one by one, and only that one is not.
func TestRecord_AnAttemptItsBatchCannotRecordCostsTheOthersNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var ids []uuid.UUID
	for range 3 {
		_, d := f.event(f.hook)
		ids = append(ids, d)
	}
	w := f.worker(f.config())
	ctx := context.Background()
	claims, _, err := w.claim(ctx, 3)
	if err != nil || len(claims) != 3 {
		t.Fatalf("claim = %d, %v; want 3", len(claims), err)
	}
	var rs []*result
	var bad uuid.UUID
	for i, c := range claims {
		r := &result{claim: c, o: outcome{verdict: delivered, status: 200, body: "ok"}}
		if i == 1 {
			r.o.body, bad = "a NUL \x00 byte", c.ID // text cannot hold it: the batch's statement fails
		}
		rs = append(rs, r)
	}
	if err := w.store(ctx, rs); err != nil {
		t.Fatalf("store: %v", err)
	}
	for _, r := range rs {
		d := f.delivery(r.ID)
		if r.ID == bad {
			if r.storeErr == nil || d.Status != "pending" || len(f.attempts(r.ID)) != 0 {
				t.Errorf("the unrecordable attempt: storeErr %v, delivery %+v, attempts %v", r.storeErr, d, f.attempts(r.ID))
			}
			continue
		}
		if r.storeErr != nil || d.Status != "success" || d.Attempts != 1 {
			t.Errorf("an attempt of the same batch: storeErr %v, delivery %+v", r.storeErr, d)
		}
		if got := f.attempts(r.ID); len(got) != 1 || got[0] != 200 {
			t.Errorf("attempt log of %s: %v", r.ID, got)
		}
	}
}
