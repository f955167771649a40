package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// The events section. A producer commits outbox events through the owner's pool (app.emit, as the
// triggers do) at a steady rate, each transaction its own statement; an SSE client on GET /admin/events
// and a webhook receiver in this process record when each event reaches them. Every latency starts when
// the producer's commit returned (the "commit time"); the events carry their producer sequence number in
// both the SSE payload and the webhook data, so receipts are matched exactly.

// eventsType is the produced events' type and SSE name: what a check-in emits.
const eventsType = "session.checkin"

// eventsDrain bounds the wait, after producing, for the last events to reach both consumers; warmDrain
// the same wait after the warm-up.
const eventsDrain, warmDrain = 60 * time.Second, 30 * time.Second

// emitSQL commits the events $2..$3 in one statement, hence one transaction.
const emitSQL = `SELECT count(app.emit($1, '` + eventsType + `', jsonb_build_object('seq', s),
                        '` + eventsType + `', jsonb_build_object('seq', s)))
  FROM generate_series($2::bigint, $3::bigint) AS s`

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
	var err error
	if rep.slot, err = waitSlotActive(ctx, admin, 30*time.Second); err != nil {
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
	fx, err := newEventsFixture(ctx, admin, cfg.mint, rc.url)
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
		w := produce(ctx, pool, fx.org, tr, 0, cfg.EventsRate, cfg.EventsPerTx, cfg.Warmup, rep.producers)
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
	rep.prod = produce(ctx, pool, fx.org, tr, first, cfg.EventsRate, cfg.EventsPerTx, cfg.EventsPhase, rep.producers)
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
	st, err := db.New().ReplicationSlotStatus(ctx, admin)
	if err != nil {
		return rep, fmt.Errorf("slot lag: %w", err)
	}
	if st.LagBytes >= 0 {
		rep.slotLag = &st.LagBytes
	}
	if rep.deliveries, err = readDeliveryStats(ctx, admin, fx.orgID); err != nil {
		return rep, fmt.Errorf("deliveries: %w", err)
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM webhook_events WHERE organization_id = $1 AND stream_id IS NULL`,
		fx.orgID).Scan(&rep.unstamped); err != nil {
		return rep, fmt.Errorf("unstamped events: %w", err)
	}
	rep.listener = readListenerStatus(ctx, cfg.ServerURL, cfg.MetricsToken)
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
