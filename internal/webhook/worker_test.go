package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
	"github.com/fieldtrack/fieldtrack/internal/webhook/webhooktest"
)

// These tests emit employee.created, an event the SSE stream does not carry, so handing their events off
// cannot disturb the event streams that other tests run on the same database. Every worker is limited to
// its test's organization.

const wait = 20 * time.Second

// fixture is an organization with one webhook pointing at a receiver on loopback.
type fixture struct {
	t      *testing.T
	pool   *pgxpool.Pool
	org    testfactory.Org
	rc     *webhooktest.Receiver
	hook   uuid.UUID
	secret string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, pool: testfactory.Pool(t), org: testfactory.NewOrg(t), rc: webhooktest.NewReceiver(t),
		secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	f.hook = f.newWebhook(f.rc.URL + "/hook")
	return f
}

// newWebhook subscribes url to employee.created in the fixture's organization.
func (f *fixture) newWebhook(url string) uuid.UUID {
	f.t.Helper()
	var id uuid.UUID
	err := f.pool.QueryRow(context.Background(), `INSERT INTO webhooks (organization_id, url, secret, events)
		VALUES ($1, $2, $3, '{employee.created}') RETURNING id`, f.org.ID, url, f.secret).Scan(&id)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// config is a worker configuration for tests: this organization only, loopback allowed, tiny backoff.
func (f *fixture) config() Config {
	return Config{OrganizationID: f.org.ID, AllowPrivateTargets: true, Concurrency: 4,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, PollInterval: 10 * time.Millisecond}
}

func (f *fixture) worker(c Config) *Worker {
	return NewWorker(f.pool, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// event emits an employee.created event, hands it off as the listener would, and returns its id and the
// delivery recorded for webhook hook.
func (f *fixture) event(hook uuid.UUID) (event, delivery uuid.UUID) {
	f.t.Helper()
	ctx := context.Background()
	if err := f.pool.QueryRow(ctx, `SELECT app.emit($1, 'employee.created', jsonb_build_object('employee_id', gen_random_uuid(), 'name', 'Dee'))`,
		f.org.ID).Scan(&event); err != nil {
		f.t.Fatal(err)
	}
	webhooktest.Dispatch(f.t, f.pool, f.org.ID)
	if err := f.pool.QueryRow(ctx, `SELECT id FROM webhook_deliveries WHERE organization_id = $1 AND event_id = $2 AND webhook_id = $3`,
		f.org.ID, event, hook).Scan(&delivery); err != nil {
		f.t.Fatalf("no delivery for event %s: %v", event, err)
	}
	return event, delivery
}

// deliveryRow is a delivery as stored, with the database's clock.
type deliveryRow struct {
	Status         string
	Attempts       int
	ResponseStatus *int
	ResponseBody   *string
	LastError      *string
	NextRetryAt    *time.Time
	Now            time.Time
}

func (f *fixture) delivery(id uuid.UUID) deliveryRow {
	f.t.Helper()
	var d deliveryRow
	err := f.pool.QueryRow(context.Background(), `SELECT status, attempt_count, response_status, response_body, last_error,
		next_retry_at, now() FROM webhook_deliveries WHERE organization_id = $1 AND id = $2`, f.org.ID, id).
		Scan(&d.Status, &d.Attempts, &d.ResponseStatus, &d.ResponseBody, &d.LastError, &d.NextRetryAt, &d.Now)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// text is a nullable column's value for a failure message.
func text(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// webhookRow is the webhook's delivery state.
type webhookRow struct {
	Active         bool
	Streak         int
	OpenUntil      *time.Time
	DisabledReason *string
	Now            time.Time
}

func (f *fixture) webhook(id uuid.UUID) webhookRow {
	f.t.Helper()
	var w webhookRow
	err := f.pool.QueryRow(context.Background(), `SELECT is_active, failure_streak, circuit_open_until, disabled_reason, now()
		FROM webhooks WHERE organization_id = $1 AND id = $2`, f.org.ID, id).
		Scan(&w.Active, &w.Streak, &w.OpenUntil, &w.DisabledReason, &w.Now)
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

// attempts returns the attempt log of a delivery: the response status of each attempt (0: none).
func (f *fixture) attempts(delivery uuid.UUID) []int {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT coalesce(response_status, 0) FROM webhook_delivery_attempts
		WHERE organization_id = $1 AND delivery_id = $2 ORDER BY attempt`, f.org.ID, delivery)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var s int
		if err := rows.Scan(&s); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// exec runs fixture SQL as the owner, e.g. to let time pass for a circuit or a lease.
func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatal(err)
	}
}

// until runs batches of the worker until cond holds.
func (f *fixture) until(w *Worker, what string, cond func() bool) {
	f.t.Helper()
	testfactory.Eventually(f.t, wait, what, func() (bool, error) {
		if _, err := w.DeliverDue(context.Background()); err != nil {
			f.t.Fatal(err)
		}
		return cond(), nil
	})
}

func TestWorker_DeliversTheSignedEnvelope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	event, delivery := f.event(f.hook)
	n, err := f.worker(f.config()).DeliverDue(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v; want 1 attempt", n, err)
	}
	reqs := f.rc.Requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	r := reqs[0]
	if err := webhooktest.VerifyStandard(f.secret, r.Header, r.Body, time.Now()); err != nil {
		t.Errorf("Standard Webhooks verification: %v", err)
	}
	if err := webhooktest.VerifyLegacy(f.secret, r.Header, r.Body, time.Now()); err != nil {
		t.Errorf("sha256= verification: %v", err)
	}
	var env map[string]any
	if err := json.Unmarshal(r.Body, &env); err != nil {
		t.Fatal(err)
	}
	if env["id"] != event.String() || env["type"] != "employee.created" || env["version"] != 1.0 ||
		env["organization_id"] != f.org.ID.String() || env["occurred_at"] == nil || env["data"].(map[string]any)["name"] != "Dee" {
		t.Errorf("envelope %s", r.Body)
	}
	if strings.ContainsAny(string(r.Body), " \n") {
		t.Errorf("body is not compact JSON: %s", r.Body)
	}
	for name, want := range map[string]string{
		"Webhook-Id": event.String(), "X-FieldTrack-Event": "employee.created", "X-FieldTrack-Delivery-Id": delivery.String(),
		"Content-Type": "application/json", "User-Agent": "FieldTrack-Webhooks/1.0",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	d := f.delivery(delivery)
	if d.Status != "success" || d.Attempts != 1 || d.ResponseStatus == nil || *d.ResponseStatus != 200 || d.NextRetryAt != nil {
		t.Errorf("delivery after success %+v", d)
	}
	if got := f.attempts(delivery); len(got) != 1 || got[0] != 200 {
		t.Errorf("attempt log %v", got)
	}
}

func TestWorker_RetriesUntilSuccessWithTheSameWebhookID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.rc.Answer(func(n int) webhooktest.Answer {
		if n <= 3 {
			return webhooktest.Answer{Status: http.StatusInternalServerError, Body: "down"}
		}
		return webhooktest.Answer{Status: http.StatusOK}
	})
	event, delivery := f.event(f.hook)
	w := f.worker(f.config())
	f.until(w, "the delivery to succeed", func() bool { return f.delivery(delivery).Status == "success" })

	reqs := f.rc.Requests()
	if len(reqs) != 4 {
		t.Fatalf("receiver got the event %d times, want 4", len(reqs))
	}
	for i, r := range reqs {
		if r.Header.Get("webhook-id") != event.String() || r.Header.Get("X-FieldTrack-Delivery-Id") != delivery.String() {
			t.Errorf("attempt %d: webhook-id %q", i+1, r.Header.Get("webhook-id"))
		}
		if err := webhooktest.VerifyStandard(f.secret, r.Header, r.Body, time.Now()); err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
	}
	if got := f.attempts(delivery); len(got) != 4 || got[0] != 500 || got[3] != 200 {
		t.Errorf("attempt log %v, want 500 500 500 200", got)
	}
	if d := f.delivery(delivery); d.Attempts != 4 || d.LastError != nil && *d.LastError != "" && d.Status != "success" {
		t.Errorf("delivery %+v", d)
	}
	if h := f.webhook(f.hook); h.Streak != 0 || h.OpenUntil != nil {
		t.Errorf("a success must reset the failure streak: %+v", h)
	}
}

func TestWorker_DeadLettersAfterTheLastAttempt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.rc.Answer(func(int) webhooktest.Answer {
		return webhooktest.Answer{Status: http.StatusBadGateway, Body: strings.Repeat("x", 10_000)}
	})
	_, delivery := f.event(f.hook)
	c := f.config()
	c.MaxAttempts = 3
	f.until(f.worker(c), "the delivery to be dead-lettered", func() bool { return f.delivery(delivery).Status == "failed" })
	d := f.delivery(delivery)
	if d.Attempts != 3 || f.rc.Count() != 3 || d.NextRetryAt != nil {
		t.Fatalf("dead letter %+v after %d requests", d, f.rc.Count())
	}
	if d.LastError == nil || *d.LastError != "HTTP 502" || d.ResponseStatus == nil || *d.ResponseStatus != 502 {
		t.Errorf("last error %v, status %v", d.LastError, d.ResponseStatus)
	}
	if d.ResponseBody == nil || len(*d.ResponseBody) != 4096 {
		t.Errorf("stored body should be truncated to 4096 bytes")
	}
}

func TestWorker_RejectionIsPermanentButThrottlingIsRetried(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{
		http.StatusBadRequest: "failed", http.StatusUnauthorized: "failed", http.StatusNotFound: "failed",
		http.StatusRequestTimeout: "pending", http.StatusTooManyRequests: "pending", http.StatusServiceUnavailable: "pending",
	} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.rc.Always(status)
			_, delivery := f.event(f.hook)
			if _, err := f.worker(f.config()).DeliverDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			if d := f.delivery(delivery); d.Status != want || d.Attempts != 1 {
				t.Fatalf("after HTTP %d: %+v, want %s", status, d, want)
			}
		})
	}
}

func TestWorker_GoneDisablesTheWebhook(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.rc.Always(http.StatusGone)
	_, first := f.event(f.hook)
	w := f.worker(f.config())
	if _, err := w.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := f.delivery(first); d.Status != "failed" || d.LastError == nil || !strings.Contains(*d.LastError, "410") {
		t.Fatalf("delivery after 410: %+v", d)
	}
	h := f.webhook(f.hook)
	if h.Active || h.DisabledReason == nil || !strings.Contains(*h.DisabledReason, "410") {
		t.Fatalf("webhook after 410: %+v", h)
	}
	// A delivery of the disabled webhook that was already pending stays pending, parked, and is not sent.
	f.exec(`UPDATE webhooks SET is_active = true WHERE organization_id = $1 AND id = $2`, f.org.ID, f.hook)
	_, second := f.event(f.hook)
	f.exec(`UPDATE webhooks SET is_active = false WHERE organization_id = $1 AND id = $2`, f.org.ID, f.hook)
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("DeliverDue = %d, %v; want nothing sent to a disabled webhook", n, err)
	}
	if d := f.delivery(second); d.Status != "pending" || d.Attempts != 0 || !d.NextRetryAt.After(d.Now.Add(30*time.Minute)) {
		t.Fatalf("pending delivery of a disabled webhook: %+v", d)
	}
	if f.rc.Count() != 1 {
		t.Fatalf("receiver got %d requests", f.rc.Count())
	}
}

func TestWorker_HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	for name, header := range map[string]func() string{
		"seconds": func() string { return "120" },
		"date":    func() string { return time.Now().Add(125 * time.Second).UTC().Format(http.TimeFormat) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.rc.Answer(func(int) webhooktest.Answer {
				return webhooktest.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": header()}}
			})
			_, delivery := f.event(f.hook)
			before := f.delivery(delivery).Now
			if _, err := f.worker(f.config()).DeliverDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			d := f.delivery(delivery)
			if d.Status != "pending" || d.NextRetryAt == nil || d.NextRetryAt.Before(before.Add(119*time.Second)) {
				t.Fatalf("after 429 with Retry-After %s: %+v (before %s)", header(), d, before)
			}
		})
	}
}

func TestWorker_CircuitOpensKeepsDeliveriesPendingThenResumes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.rc.Always(http.StatusInternalServerError)
	var deliveries []uuid.UUID
	for range 4 {
		_, d := f.event(f.hook)
		deliveries = append(deliveries, d)
	}
	c := f.config()
	c.Concurrency, c.CircuitThreshold, c.CircuitOpen = 1, 3, time.Hour
	w := f.worker(c)
	f.until(w, "three failures", func() bool { return f.rc.Count() == 3 })

	h := f.webhook(f.hook)
	if h.Streak != 3 || h.OpenUntil == nil || h.OpenUntil.Before(h.Now.Add(59*time.Minute)) {
		t.Fatalf("circuit after 3 failures: %+v", h)
	}
	// While open, nothing is sent and nothing is dropped: due deliveries are parked behind the circuit.
	f.exec(`UPDATE webhook_deliveries SET next_retry_at = now() WHERE organization_id = $1 AND webhook_id = $2`, f.org.ID, f.hook)
	c.Concurrency = 4
	w = f.worker(c)
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("DeliverDue while open = %d, %v", n, err)
	}
	for _, id := range deliveries {
		if d := f.delivery(id); d.Status != "pending" || d.NextRetryAt.Before(*h.OpenUntil) {
			t.Fatalf("delivery while the circuit is open: %+v", d)
		}
	}
	if f.rc.Count() != 3 {
		t.Fatalf("receiver got %d requests while the circuit was open", f.rc.Count())
	}

	// The hour passes: one probe goes out; it fails, and the circuit opens for twice as long.
	letTimePass := func() {
		f.exec(`UPDATE webhooks SET circuit_open_until = now() - interval '1 second' WHERE organization_id = $1 AND id = $2`, f.org.ID, f.hook)
		f.exec(`UPDATE webhook_deliveries SET next_retry_at = now() WHERE organization_id = $1 AND webhook_id = $2 AND status = 'pending'`, f.org.ID, f.hook)
	}
	letTimePass()
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("half-open DeliverDue = %d, %v; want exactly one probe", n, err)
	}
	h = f.webhook(f.hook)
	if h.Streak != 4 || h.OpenUntil == nil || h.OpenUntil.Before(h.Now.Add(119*time.Minute)) {
		t.Fatalf("circuit after a failed probe: %+v", h)
	}

	// The endpoint recovers: the next probe succeeds, closes the circuit, and the rest follow.
	f.rc.Always(http.StatusOK)
	letTimePass()
	f.until(w, "every delivery to succeed", func() bool {
		for _, id := range deliveries {
			if f.delivery(id).Status != "success" {
				return false
			}
		}
		return true
	})
	if h := f.webhook(f.hook); h.Streak != 0 || h.OpenUntil != nil {
		t.Fatalf("circuit after recovery: %+v", h)
	}
}

func TestWorker_RefusesInternalTargetsUnlessAllowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	port := f.rc.URL[strings.LastIndex(f.rc.URL, ":")+1:]
	c := f.config()
	c.AllowPrivateTargets = false
	w := f.worker(c)
	for _, host := range []string{"localhost", "127.0.0.1", "[::1]", "169.254.169.254"} {
		hook := f.newWebhook("http://" + host + ":" + port + "/hook")
		_, delivery := f.event(hook)
		f.until(w, "the refusal of "+host, func() bool { return f.delivery(delivery).Status != "pending" })
		d := f.delivery(delivery)
		if d.Status != "failed" || d.LastError == nil || *d.LastError != "target not allowed" || d.ResponseStatus != nil {
			t.Errorf("%s: %+v (error %q)", host, d, text(d.LastError))
		}
	}
	if f.rc.Count() != 0 {
		t.Fatalf("the receiver on loopback got %d requests", f.rc.Count())
	}
}

// WEBHOOK_ALLOW_PRIVATE_TARGETS lets loopback through, not the rest of the guard: 0.0.0.0 would reach the
// receiver on loopback by another name, and is refused.
func TestWorker_AllowingPrivateTargetsStillRefusesTheUnspecifiedAddress(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	port := f.rc.URL[strings.LastIndex(f.rc.URL, ":")+1:]
	hook := f.newWebhook("http://0.0.0.0:" + port + "/unspecified")
	_, delivery := f.event(hook)
	f.until(f.worker(f.config()), "the refusal", func() bool { return f.delivery(delivery).Status != "pending" })
	if d := f.delivery(delivery); d.Status != "failed" || d.LastError == nil || *d.LastError != "target not allowed" {
		t.Fatalf("delivery to 0.0.0.0: %+v (error %q)", d, text(d.LastError))
	}
	for _, r := range f.rc.Requests() {
		if r.Path == "/unspecified" {
			t.Fatal("the receiver on loopback got the delivery addressed to 0.0.0.0")
		}
	}
}

func TestWorker_DoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	target := webhooktest.NewReceiver(t)
	f.rc.Answer(func(int) webhooktest.Answer {
		return webhooktest.Answer{Status: http.StatusFound, Header: map[string]string{"Location": target.URL + "/elsewhere"}}
	})
	_, delivery := f.event(f.hook)
	if _, err := f.worker(f.config()).DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := f.delivery(delivery)
	if target.Count() != 0 || d.Status != "pending" || d.ResponseStatus == nil || *d.ResponseStatus != 302 ||
		d.LastError == nil || !strings.Contains(*d.LastError, "redirect") {
		t.Fatalf("after a 302: %+v (error %v), redirect target got %d", d, d.LastError, target.Count())
	}
}

func TestWorker_TimeoutIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.rc.Answer(func(int) webhooktest.Answer { return webhooktest.Answer{Block: true} })
	_, delivery := f.event(f.hook)
	c := f.config()
	c.Timeout = 300 * time.Millisecond
	if _, err := f.worker(c).DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := f.delivery(delivery)
	if d.Status != "pending" || d.Attempts != 1 || d.LastError == nil || !strings.Contains(*d.LastError, "timeout") {
		t.Fatalf("after a timeout: %+v (error %v)", d, d.LastError)
	}
}

func TestClaim_LeaseKeepsOtherWorkersOffUntilItExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, delivery := f.event(f.hook)
	a, b := f.worker(f.config()), f.worker(f.config())
	ctx := context.Background()
	first, _, err := a.claim(ctx, 4)
	if err != nil || len(first) != 1 || first[0].ID != delivery || first[0].AttemptCount != 1 {
		t.Fatalf("first claim %v, %v", first, err)
	}
	if d := f.delivery(delivery); !d.NextRetryAt.After(d.Now.Add(30 * time.Second)) {
		t.Fatalf("claim did not push next_retry_at a lease ahead: %+v", d)
	}
	if again, _, err := b.claim(ctx, 4); err != nil || len(again) != 0 {
		t.Fatalf("a claimed delivery was claimed again: %v, %v", again, err)
	}
	// The first worker dies; its lease runs out; another worker takes the delivery over.
	f.exec(`UPDATE webhook_deliveries SET next_retry_at = now() WHERE organization_id = $1 AND id = $2`, f.org.ID, delivery)
	second, _, err := b.claim(ctx, 4)
	if err != nil || len(second) != 1 || second[0].AttemptCount != 2 {
		t.Fatalf("claim after the lease expired: %v, %v", second, err)
	}
	// A late report of the first claim does not overwrite the current one.
	if _, err := a.record(ctx, first[0], outcome{verdict: delivered, status: 200}); err != nil {
		t.Fatal(err)
	}
	if d := f.delivery(delivery); d.Status != "pending" || d.Attempts != 2 {
		t.Fatalf("a stale claim's report changed the delivery: %+v", d)
	}
}

func TestRun_DeliversPromptlyAndGivesBackInterruptedClaimsOnStop(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.worker(f.config()).Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	_, delivery := f.event(f.hook)
	testfactory.Eventually(t, wait, "Run to deliver", func() (bool, error) { return f.delivery(delivery).Status == "success", nil })

	f.rc.Answer(func(int) webhooktest.Answer { return webhooktest.Answer{Block: true} })
	_, blocked := f.event(f.hook)
	testfactory.Eventually(t, wait, "the second attempt to start", func() (bool, error) { return f.rc.Count() == 2, nil })
	cancel()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Run did not stop when its context ended")
	}
	if d := f.delivery(blocked); d.Status != "pending" || d.Attempts != 0 || d.NextRetryAt.After(d.Now) {
		t.Fatalf("interrupted delivery not given back: %+v", d)
	}
}
