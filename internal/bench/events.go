package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// The events section. A producer commits outbox events through the owner's pool (app.emit, as the
// triggers do) at a steady rate, each transaction its own statement; an SSE client on GET /admin/events
// and a webhook receiver in this process record when each event reaches them. Every latency starts when
// the producer's commit returned (the "commit time"); the events carry their producer sequence number in
// both the SSE payload and the webhook data, so receipts are matched exactly.

const (
	// eventsType is the produced events' type and SSE name: what a check-in emits.
	eventsType = "session.checkin"
	// eventsDrain bounds the wait, after producing, for the last events to reach both consumers.
	eventsDrain = 60 * time.Second
	// warmDrain bounds the same wait after the warm-up.
	warmDrain = 30 * time.Second
	// producerTick is the pacing period: each tick releases the transactions due by then, so the average
	// rate is exact however coarse the ticks are.
	producerTick = 5 * time.Millisecond
	// sseAttempts bounds the SSE client's connections (the first one, and reconnections after a drop).
	sseAttempts = 20
	// missing stands for "never arrived" among latencies; it sorts last.
	missing = time.Duration(math.MaxInt64)
)

// emitSQL commits the events $2..$3 in one statement, hence one transaction.
const emitSQL = `SELECT count(app.emit($1, '` + eventsType + `', jsonb_build_object('seq', s),
                        '` + eventsType + `', jsonb_build_object('seq', s)))
  FROM generate_series($2::bigint, $3::bigint) AS s`

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

// produce commits plannedTx(rate, perTx, d) transactions starting at sequence number first, releasing
// them on a schedule of rate events/s to producers connections. A transaction whose time has come waits in
// a queue of one second's worth while every producer is busy; what is still unsent at the deadline is the
// shortfall. Latency is measured from each commit, so queueing here does not count against the pipeline.
func produce(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID, tr *tracker, first int64, rate, perTx int,
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
				err := pool.QueryRow(ctx, emitSQL, org, seq, seq+int64(perTx)-1).Scan(&n)
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

// receiver is the webhook endpoint: it records the first attempt per webhook-id and answers 200 at once.
type receiver struct {
	srv   *http.Server
	url   string
	https bool
}

func startReceiver(tr *tracker, certFile, keyFile string) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := tr.now()
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
		var env struct {
			Data struct {
				Seq *int64 `json:"seq"`
			} `json:"data"`
		}
		seq := int64(-1)
		if json.Unmarshal(body, &env) == nil && env.Data.Seq != nil {
			seq = *env.Data.Seq
		}
		tr.sawHook(r.Header.Get("webhook-id"), seq, at)
		w.WriteHeader(http.StatusOK)
	})
	rc := &receiver{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	if certFile == "" {
		rc.url = "http://" + ln.Addr().String() + "/ftbench/webhook"
		go func() { _ = rc.srv.Serve(ln) }()
		return rc, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("receiver certificate: %w", err)
	}
	rc.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	rc.url, rc.https = "https://"+ln.Addr().String()+"/ftbench/webhook", true
	go func() { _ = rc.srv.ServeTLS(ln, "", "") }()
	return rc, nil
}

func (rc *receiver) close() { _ = rc.srv.Close() }

// sseClient reads GET /admin/events and records, per event of the run, when its frame was parsed.
type sseClient struct {
	url, token string
	hc         *http.Client
	tr         *tracker

	connected chan struct{} // closed at the first `connected` frame
	done      chan struct{} // closed when run returns
	once      sync.Once

	// Written by run only; read after done.
	reconnects int    // connections after the first one had streamed
	endErr     string // why the last connection ended before the run stopped it
}

func newSSEClient(base, token string, tr *tracker) *sseClient {
	return &sseClient{url: base + "/admin/events", token: token, tr: tr,
		hc: &http.Client{Transport: &http.Transport{Proxy: nil, ResponseHeaderTimeout: 10 * time.Second,
			DisableCompression: true}},
		connected: make(chan struct{}), done: make(chan struct{})}
}

// run streams until ctx ends. A stream that ends early (the hub drops a client that falls behind) is
// resumed with Last-Event-ID, at most sseAttempts connections in all; replayed frames count as received
// when they arrive.
func (c *sseClient) run(ctx context.Context) {
	defer close(c.done)
	lastID, streamed := "", false
	for range sseAttempts {
		if streamed {
			c.reconnects++
		}
		ok, err := c.stream(ctx, &lastID)
		streamed = streamed || ok
		if ctx.Err() != nil {
			return
		}
		c.endErr = err.Error()
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stream is one connection; ok reports that it got as far as the `connected` frame.
func (c *sseClient) stream(ctx context.Context, lastID *string) (ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return false, httpError(resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxBody)
	var event, id string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // end of a frame
			at := c.tr.now()
			switch event {
			case "connected":
				ok = true
				c.once.Do(func() { close(c.connected) })
			case eventsType:
				var f struct {
					Payload struct {
						Seq *int64 `json:"seq"`
					} `json:"payload"`
				}
				seq := int64(-1)
				if json.Unmarshal([]byte(data.String()), &f) == nil && f.Payload.Seq != nil {
					seq = *f.Payload.Seq
				}
				c.tr.sawSSE(seq, at)
			}
			if id != "" {
				*lastID = id
			}
			event, id = "", ""
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment (heartbeat)
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "id":
			id = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
	}
	if err := sc.Err(); err != nil {
		return ok, fmt.Errorf("SSE stream: %w", err)
	}
	return ok, errors.New("SSE stream ended by the server")
}

// serverSettings describes the server under test from its environment (/proc/PID/environ, read through
// the server's own config.Load), so the report states the worker's and the listener's effective settings.
type serverSettings struct {
	known bool
	cfg   config.Config
	err   string
}

func readServerSettings(pid int) serverSettings {
	if pid <= 0 {
		return serverSettings{err: "no server pid given"}
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return serverSettings{err: err.Error()}
	}
	env := map[string]string{}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	c, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return serverSettings{err: err.Error()}
	}
	return serverSettings{known: true, cfg: c}
}

// eventsFixture is the section's organization: an admin (for the SSE stream) and one webhook subscribed
// to eventsType, pointing at the receiver.
type eventsFixture struct {
	orgID, adminID, webhookID uuid.UUID
	token                     string
}

func newEventsFixture(ctx context.Context, pool *pgxpool.Pool, secret []byte, hookURL string) (eventsFixture, error) {
	f := eventsFixture{orgID: uuid.New(), adminID: uuid.New()}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return f, err
	}
	hookSecret := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO organizations (id, name) VALUES ($1, $2)`,
			f.orgID, "Benchmark events "+strconv.FormatInt(time.Now().Unix(), 10)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO users (organization_id, id, email, role) VALUES ($1, $2, $3, 'ADMIN')`,
			f.orgID, f.adminID, "bench-admin-"+f.adminID.String()+"@example.test"); err != nil {
			return err
		}
		// As the owner: the API would refuse an http:// or loopback URL in production.
		return tx.QueryRow(ctx, `INSERT INTO webhooks (organization_id, url, secret, events)
			VALUES ($1, $2, $3, ARRAY['`+eventsType+`']) RETURNING id`, f.orgID, hookURL, hookSecret).Scan(&f.webhookID)
	})
	if err != nil {
		return f, fmt.Errorf("events fixtures: %w", err)
	}
	f.token, err = auth.Mint(secret, auth.MintOptions{Subject: f.adminID.String(), Role: auth.RoleAdmin,
		OrgID: f.orgID, Audience: auth.DefaultAudience, TTL: tokenTTL})
	return f, err
}

// outboxSlot is how to ask about the listener's replication slot. The schema has had two shapes:
// app.slot_lag_bytes(slot) and app.slot_active(slot) for the slot "fieldtrack_events", and later the
// argument-less forms for the slot app.outbox_slot() names (one per database). Both are accepted.
type outboxSlot struct {
	name, lagSQL, activeSQL string
}

func findOutboxSlot(ctx context.Context, pool *pgxpool.Pool) (outboxSlot, error) {
	var perDatabase bool
	if err := pool.QueryRow(ctx, `SELECT to_regprocedure('app.slot_lag_bytes()') IS NOT NULL
		AND to_regprocedure('app.outbox_slot()') IS NOT NULL`).Scan(&perDatabase); err != nil {
		return outboxSlot{}, fmt.Errorf("slot functions: %w", err)
	}
	if !perDatabase {
		const name = "fieldtrack_events"
		return outboxSlot{name: name, lagSQL: `SELECT app.slot_lag_bytes('` + name + `')`,
			activeSQL: `SELECT app.slot_active('` + name + `')`}, nil
	}
	s := outboxSlot{lagSQL: `SELECT app.slot_lag_bytes()`, activeSQL: `SELECT app.slot_active()`}
	if err := pool.QueryRow(ctx, `SELECT app.outbox_slot()`).Scan(&s.name); err != nil {
		return s, fmt.Errorf("slot name: %w", err)
	}
	return s, nil
}

// waitActive waits until a listener streams from the outbox slot.
func (s outboxSlot) waitActive(ctx context.Context, pool *pgxpool.Pool, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var active bool
		if err := pool.QueryRow(ctx, s.activeSQL).Scan(&active); err != nil {
			return fmt.Errorf("slot state: %w", err)
		}
		if active {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no listener streams from slot %s after %s: is EVENTS_LISTENER_ENABLED off?",
				s.name, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitArrivals waits until every committed event in [lo, hi) has reached both consumers (or the SSE
// client has stopped and only its events are missing), for at most limit. It returns how long it waited.
func waitArrivals(ctx context.Context, tr *tracker, sse *sseClient, lo, hi int64, limit time.Duration) time.Duration {
	start := time.Now()
	for {
		s, h := tr.outstanding(lo, hi)
		select {
		case <-sse.done:
			s = 0
		default:
		}
		if (s == 0 && h == 0) || time.Since(start) > limit || ctx.Err() != nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pipelineMonitor samples, once a second while the measured production runs, the outbox backlog (events
// not yet handed off by the listener) and the organization's pending deliveries.
type pipelineMonitor struct {
	maxBacklog, maxPending int64
	samples                int
	err                    string
}

func monitorPipeline(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID) *pipelineMonitor {
	m := &pipelineMonitor{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return m
		case <-t.C:
		}
		var backlog, pending int64
		err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM webhook_events WHERE stream_id IS NULL),
			(SELECT count(*) FROM webhook_deliveries WHERE organization_id = $1 AND status = 'pending')`, org).
			Scan(&backlog, &pending)
		if err != nil {
			if ctx.Err() == nil && m.err == "" {
				m.err = err.Error()
			}
			continue
		}
		m.samples++
		m.maxBacklog, m.maxPending = max(m.maxBacklog, backlog), max(m.maxPending, pending)
	}
}

// listenerStatus is what GET /admin/system-health says about the listener at the end ("" when unknown).
type listenerStatus struct {
	handedOff string
	lastError string
	err       string
}

func readListenerStatus(ctx context.Context, base, token string) listenerStatus {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/admin/system-health", nil)
	if err != nil {
		return listenerStatus{err: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := newHTTPClient(1).Do(req)
	if err != nil {
		return listenerStatus{err: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode != http.StatusOK {
		return listenerStatus{err: httpError(resp.StatusCode, b).Error()}
	}
	var body struct {
		Listener map[string]any `json:"listener"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.Listener == nil {
		return listenerStatus{err: "no listener in the answer"}
	}
	st := listenerStatus{}
	if v, ok := body.Listener["handedOff"]; ok {
		st.handedOff = fmt.Sprint(v)
	}
	if v, ok := body.Listener["lastError"]; ok {
		st.lastError = fmt.Sprintf("%v (at %v)", v, body.Listener["lastErrorAt"])
	}
	return st
}

// deliveryStats is the organization's webhook_deliveries at the end.
type deliveryStats struct {
	total, success, failed, pending, attempts int64
	lastError                                 string
}

func readDeliveryStats(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID) (deliveryStats, error) {
	var s deliveryStats
	var lastErr *string
	err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'success'),
		count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'pending'),
		coalesce(sum(attempt_count), 0),
		(SELECT last_error FROM webhook_deliveries WHERE organization_id = $1 AND last_error IS NOT NULL LIMIT 1)
		FROM webhook_deliveries WHERE organization_id = $1`, org).
		Scan(&s.total, &s.success, &s.failed, &s.pending, &s.attempts, &lastErr)
	if lastErr != nil {
		s.lastError = *lastErr
	}
	return s, err
}

// readHandoffs returns, per sequence number, when the listener handed the event off (dispatched_at, the
// start of its hand-off transaction) as an offset of tr; 0 when it has not.
func readHandoffs(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID, tr *tracker) ([]time.Duration, error) {
	out := make([]time.Duration, len(tr.commit))
	rows, err := pool.Query(ctx, `SELECT (payload #>> '{data,seq}')::bigint, dispatched_at FROM webhook_events
		WHERE organization_id = $1 AND event_type = $2 AND dispatched_at IS NOT NULL`, org, eventsType)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var at time.Time
		if err := rows.Scan(&seq, &at); err != nil {
			return nil, err
		}
		if seq >= 0 && seq < int64(len(out)) {
			out[seq] = tr.offset(at)
			if out[seq] == 0 {
				out[seq] = 1
			}
		}
	}
	return out, rows.Err()
}

// runEvents sets up the section's organization, webhook, receiver and SSE client, produces an uncounted
// warm-up and then the measured events, waits for them to arrive and collects the figures.
func runEvents(ctx context.Context, cfg Config, env dbEnv, admin *pgxpool.Pool, probe cpuProbe,
	logf func(string, ...any)) (eventsReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute+cfg.Warmup+warmDrain+cfg.EventsPhase+eventsDrain)
	defer cancel()
	rep := eventsReport{cfg: cfg, env: env, server: readServerSettings(cfg.ServerPID),
		producers: producerCount(cfg.EventsRate, cfg.EventsPerTx)}
	if s := rep.server; s.known {
		switch {
		case !s.cfg.ListenerEnabled:
			return rep, errors.New("the server runs without the listener (EVENTS_LISTENER_ENABLED=false)")
		case !s.cfg.WebhookWorkerEnabled:
			return rep, errors.New("the server runs without the webhook worker (set WEBHOOK_WORKER_ENABLED=true)")
		case !s.cfg.WebhookAllowPrivateTargets:
			return rep, errors.New("the server refuses loopback webhook targets (set WEBHOOK_ALLOW_PRIVATE_TARGETS=true)")
		case s.cfg.Production() && cfg.ReceiverCert == "":
			return rep, errors.New("with APP_ENV=production the worker sends https only: give -receiver-cert and " +
				"-receiver-key, and start the server with SSL_CERT_FILE set to the certificate (scripts/bench.sh does)")
		}
	}
	slot, err := findOutboxSlot(ctx, admin)
	if err != nil {
		return rep, err
	}
	rep.slot = slot
	if err := slot.waitActive(ctx, admin, 30*time.Second); err != nil {
		return rep, err
	}

	warmTx := plannedTx(cfg.EventsRate, cfg.EventsPerTx, cfg.Warmup)
	measTx := plannedTx(cfg.EventsRate, cfg.EventsPerTx, cfg.EventsPhase)
	if measTx == 0 {
		return rep, fmt.Errorf("%d events/s for %s at %d per transaction is less than one transaction",
			cfg.EventsRate, cfg.EventsPhase, cfg.EventsPerTx)
	}
	perTx := int64(cfg.EventsPerTx)
	tr := newTracker((warmTx + measTx) * perTx)
	rc, err := startReceiver(tr, cfg.ReceiverCert, cfg.ReceiverKey)
	if err != nil {
		return rep, err
	}
	defer rc.close()
	rep.https = rc.https
	fx, err := newEventsFixture(ctx, admin, cfg.Secret, rc.url)
	if err != nil {
		return rep, err
	}
	logf("events: organization %s, webhook %s -> %s", fx.orgID, fx.webhookID, rc.url)

	sseCtx, stopSSE := context.WithCancel(ctx)
	defer stopSSE()
	sse := newSSEClient(cfg.ServerURL, fx.token, tr)
	go sse.run(sseCtx)
	select {
	case <-sse.connected:
	case <-sse.done:
		return rep, fmt.Errorf("SSE stream on %s did not connect: %s", sse.url, sse.endErr)
	case <-time.After(30 * time.Second):
		return rep, fmt.Errorf("SSE stream on %s did not connect within 30 s", sse.url)
	}

	pool, err := db.NewPool(ctx, db.PoolConfig{URL: cfg.DatabaseURL, MaxConns: int32(rep.producers)})
	if err != nil {
		return rep, err
	}
	defer pool.Close()

	if warmTx > 0 {
		logf("events: warm-up %s at %d events/s", cfg.Warmup, cfg.EventsRate)
		w := produce(ctx, pool, fx.orgID, tr, 0, cfg.EventsRate, cfg.EventsPerTx, cfg.Warmup, rep.producers)
		waited := waitArrivals(ctx, tr, sse, 0, warmTx*perTx, warmDrain)
		s, h := tr.outstanding(0, warmTx*perTx)
		rep.warm = w
		logf("events: warm-up committed %d events (%d failed tx); drained in %s, %d SSE and %d webhook still missing",
			w.events, w.errors, waited.Round(time.Millisecond), s, h)
	}
	// A checkpoint now rather than in the middle of the measurement, as before each GPS phase.
	if _, err := admin.Exec(ctx, "CHECKPOINT"); err != nil {
		return rep, fmt.Errorf("checkpoint: %w", err)
	}

	first := warmTx * perTx
	logf("events: measuring %s at %d events/s, %d per transaction, %d producer connections",
		cfg.EventsPhase, cfg.EventsRate, cfg.EventsPerTx, rep.producers)
	monCtx, stopMon := context.WithCancel(ctx)
	monDone := make(chan *pipelineMonitor, 1)
	go func() { monDone <- monitorPipeline(monCtx, admin, fx.orgID) }()
	before := probe.sample()
	rep.prod = produce(ctx, pool, fx.orgID, tr, first, cfg.EventsRate, cfg.EventsPerTx, cfg.EventsPhase, rep.producers)
	rep.prod.cpu = cpuBetween(before, probe.sample())
	stopMon()
	rep.monitor = <-monDone
	logf("events: committed %d events in %s (%.1f/s), %d failed tx; waiting up to %s for the last arrivals",
		rep.prod.events, rep.prod.elapsed.Round(time.Millisecond), rep.prod.rate(), rep.prod.errors, eventsDrain)
	rep.drained = waitArrivals(ctx, tr, sse, first, first+measTx*perTx, eventsDrain)
	if !running(cfg.ServerPID) {
		return rep, fmt.Errorf("the server (pid %d) is gone after the events section; see its log", cfg.ServerPID)
	}

	// Read the pipeline's state while the receiver still answers, so that no attempt fails because of us.
	if err := admin.QueryRow(ctx, slot.lagSQL).Scan(&rep.slotLag); err != nil {
		return rep, fmt.Errorf("slot lag: %w", err)
	}
	if rep.deliveries, err = readDeliveryStats(ctx, admin, fx.orgID); err != nil {
		return rep, fmt.Errorf("deliveries: %w", err)
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM webhook_events WHERE organization_id = $1 AND stream_id IS NULL`,
		fx.orgID).Scan(&rep.unstamped); err != nil {
		return rep, fmt.Errorf("unstamped events: %w", err)
	}
	rep.listener = readListenerStatus(ctx, cfg.ServerURL, fx.token)
	stopSSE()
	<-sse.done
	rc.close()
	handoff, err := readHandoffs(ctx, admin, fx.orgID, tr)
	if err != nil {
		return rep, fmt.Errorf("hand-off times: %w", err)
	}

	tr.mu.Lock()
	defer tr.mu.Unlock()
	lo, hi := first, first+measTx*perTx
	rep.paths = []latencyPath{
		{name: "commit → listener hand-off (`dispatched_at`)", lat: latencies(tr.commit, handoff, lo, hi)},
		{name: "commit → SSE frame received", lat: latencies(tr.commit, tr.sse, lo, hi), target: targetSSE},
		{name: "commit → first webhook attempt received", lat: latencies(tr.commit, tr.hook, lo, hi), target: targetHook},
		{name: "hand-off → SSE frame received", lat: latencies(handoff, tr.sse, lo, hi)},
		{name: "hand-off → first webhook attempt received", lat: latencies(handoff, tr.hook, lo, hi)},
	}
	for seq := lo; seq < hi && len(rep.unstampedSeqs) < 8; seq++ {
		if tr.commit[seq] != 0 && handoff[seq] == 0 {
			rep.unstampedSeqs = append(rep.unstampedSeqs, seq)
		}
	}
	rep.attempts, rep.repeated, rep.hookStray, rep.sseStray = tr.attempts, tr.repeated, tr.hookStray, tr.sseStray
	rep.sseReconnects, rep.sseEndErr = sse.reconnects, sse.endErr
	rep.memory, rep.memoryErr = readMemory(cfg.ServerPID)
	return rep, nil
}
