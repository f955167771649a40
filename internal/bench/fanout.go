package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// The fan-out section. Many SSE streams (FanoutStreams, default 1,000) over many organizations
// (FanoutOrgs, 50: the same number of streams each) follow GET /admin/events while a producer commits
// events at FanoutRate a second, each to the next organization in turn. Every stream records when each of
// its organization's events reached it; the latency of every (stream, event) pair runs from the moment
// the producer's commit returned. The server's resident set is sampled meanwhile.

// Targets of the fan-out: commit → frame p99 over every stream's every event, and the server's resident
// set while it serves the streams.
const (
	targetFanoutP99 = 50 * time.Millisecond
	targetFanoutRSS = 150e6 // bytes
)

type fanoutReport struct {
	cfg       Config
	env       dbEnv
	producers int
	connected time.Duration // until every stream had its `connected` frame
	warm      production
	prod      production

	lat                         []time.Duration // every expected (stream, measured event) pair, sorted; missing last
	expected, received, repeats int64
	stray                       int64
	reconnects                  int
	peakRSSKB                   int64 // the largest VmRSS sampled during the measurement
	rssErr                      string
}

// fanStream is one SSE stream's receipts: when each event (by sequence number) first reached it.
type fanStream struct {
	org     int
	mu      sync.Mutex
	got     map[int64]time.Duration
	repeats int64
	stray   int64
}

func (s *fanStream) saw(seq int64, at time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch _, dup := s.got[seq]; {
	case seq < 0:
		s.stray++
	case dup:
		s.repeats++
	default:
		s.got[seq] = at
	}
}

func runFanout(ctx context.Context, cfg Config, env dbEnv, admin *pgxpool.Pool, probe cpuProbe,
	logf func(string, ...any)) (fanoutReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute+cfg.Warmup+warmDrain+cfg.FanoutPhase+eventsDrain)
	defer cancel()
	perOrg := cfg.FanoutStreams / cfg.FanoutOrgs
	rep := fanoutReport{cfg: cfg, env: env, producers: producerCount(cfg.FanoutRate, 1)}
	if s := readServerSettings(cfg.ServerPID); s.known {
		switch {
		case !s.cfg.ListenerEnabled:
			return rep, errors.New("the server runs without the listener (EVENTS_LISTENER_ENABLED=false)")
		case s.cfg.SSEMaxStreamsPerOrg < perOrg:
			return rep, fmt.Errorf("the server allows %d streams per organization (SSE_MAX_STREAMS_PER_ORG), the "+
				"fan-out needs %d (BENCH_FANOUT_STREAMS / BENCH_FANOUT_ORGS)", s.cfg.SSEMaxStreamsPerOrg, perOrg)
		}
	}
	if _, err := waitSlotActive(ctx, admin, 30*time.Second); err != nil {
		return rep, err
	}
	orgs, tokens, err := newFanoutOrgs(ctx, admin, cfg.FanoutOrgs, cfg.mint)
	if err != nil {
		return rep, err
	}
	orgOf := func(seq int64) uuid.UUID { return orgs[seq%int64(len(orgs))] }
	warmTx := plannedTx(cfg.FanoutRate, 1, cfg.Warmup)
	measTx := plannedTx(cfg.FanoutRate, 1, cfg.FanoutPhase)
	tr := newTracker(warmTx + measTx)

	// Every stream on its own connection, as browsers' EventSource would be.
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression: true, MaxIdleConnsPerHost: cfg.FanoutStreams}}
	sseCtx, stopSSE := context.WithCancel(ctx)
	defer stopSSE()
	streams := make([]*fanStream, cfg.FanoutStreams)
	clients := make([]*sseClient, cfg.FanoutStreams)
	began := time.Now()
	for i := range streams {
		s := &fanStream{org: i % len(orgs), got: map[int64]time.Duration{}}
		streams[i] = s
		clients[i] = newSSEClientWith(hc, cfg.ServerURL, tokens[s.org], tr.now, s.saw)
		go clients[i].run(sseCtx)
	}
	for i, c := range clients {
		select {
		case <-c.connected:
		case <-c.done:
			return rep, fmt.Errorf("SSE stream %d of %d did not connect: %s", i+1, len(clients), c.endErr)
		case <-time.After(60 * time.Second):
			return rep, fmt.Errorf("SSE stream %d of %d did not connect within 60 s", i+1, len(clients))
		}
	}
	rep.connected = time.Since(began)
	logf("fanout: %d streams over %d organizations connected in %s", len(clients), len(orgs),
		rep.connected.Round(time.Millisecond))

	pool, err := db.NewPool(ctx, db.PoolConfig{URL: cfg.DatabaseURL, MaxConns: int32(rep.producers)})
	if err != nil {
		return rep, err
	}
	defer pool.Close()
	byOrg := make([][]*fanStream, len(orgs))
	for _, s := range streams {
		byOrg[s.org] = append(byOrg[s.org], s)
	}
	// outstanding counts the (stream, committed event) pairs of [lo, hi) still to arrive.
	outstanding := func(lo, hi int64) int64 {
		var n int64
		for seq := lo; seq < hi; seq++ {
			if tr.committedAt(seq) == 0 {
				continue
			}
			for _, s := range byOrg[seq%int64(len(orgs))] {
				s.mu.Lock()
				if _, ok := s.got[seq]; !ok {
					n++
				}
				s.mu.Unlock()
			}
		}
		return n
	}
	drain := func(lo, hi int64, limit time.Duration) time.Duration {
		start := time.Now()
		for outstanding(lo, hi) > 0 && time.Since(start) < limit && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start)
	}
	if warmTx > 0 {
		rep.warm = produce(ctx, pool, orgOf, tr, 0, cfg.FanoutRate, 1, cfg.Warmup, rep.producers)
		waited := drain(0, warmTx, warmDrain)
		logf("fanout: warm-up committed %d events; drained in %s", rep.warm.events, waited.Round(time.Millisecond))
	}
	if _, err := admin.Exec(ctx, "CHECKPOINT"); err != nil {
		return rep, fmt.Errorf("checkpoint: %w", err)
	}

	logf("fanout: measuring %s at %d events/s to %d streams", cfg.FanoutPhase, cfg.FanoutRate, len(clients))
	var peak atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan string, 1)
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := ""
		for {
			if m, err := readMemory(cfg.ServerPID); err == nil {
				peak.Store(max(peak.Load(), m.rssKB))
			} else {
				last = err.Error()
			}
			select {
			case <-sampleCtx.Done():
				sampled <- last
				return
			case <-t.C:
			}
		}
	}()
	before := probe.sample()
	rep.prod = produce(ctx, pool, orgOf, tr, warmTx, cfg.FanoutRate, 1, cfg.FanoutPhase, rep.producers)
	rep.prod.cpu = cpuBetween(before, probe.sample())
	stopSampling()
	if rep.peakRSSKB = peak.Load(); rep.peakRSSKB == 0 {
		rep.rssErr = <-sampled
	}
	logf("fanout: committed %d events in %s, %d failed tx; waiting up to %s for the last frames",
		rep.prod.events, rep.prod.elapsed.Round(time.Millisecond), rep.prod.errors, eventsDrain)
	drain(warmTx, warmTx+measTx, eventsDrain)
	stopSSE()
	for _, c := range clients {
		<-c.done
		rep.reconnects += c.reconnects
	}
	if !running(cfg.ServerPID) {
		return rep, fmt.Errorf("the server (pid %d) is gone after the fan-out section; see its log", cfg.ServerPID)
	}

	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, s := range streams {
		rep.repeats += s.repeats
		rep.stray += s.stray
		for seq := warmTx; seq < warmTx+measTx; seq++ {
			if int(seq%int64(len(orgs))) != s.org || tr.commit[seq] == 0 {
				continue
			}
			rep.expected++
			if at, ok := s.got[seq]; ok {
				rep.received++
				rep.lat = append(rep.lat, at-tr.commit[seq])
			} else {
				rep.lat = append(rep.lat, missing)
			}
		}
	}
	slices.Sort(rep.lat)
	return rep, nil
}

// newFanoutOrgs makes n organizations, each with an admin, and returns them with a token of each admin.
func newFanoutOrgs(ctx context.Context, pool *pgxpool.Pool, n int, mint minter) ([]uuid.UUID, []string, error) {
	orgs, admins, tokens := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]string, n)
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for i := range orgs {
			orgs[i], admins[i] = uuid.New(), uuid.New()
			if _, err := tx.Exec(ctx, `INSERT INTO organizations (id, name) VALUES ($1, $2)`,
				orgs[i], fmt.Sprintf("Benchmark fan-out %s #%d", stamp, i+1)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO users (organization_id, id, email, role) VALUES ($1, $2, $3, 'ADMIN')`,
				orgs[i], admins[i], "bench-fanout-"+admins[i].String()+"@example.test"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("fan-out fixtures: %w", err)
	}
	for i := range orgs {
		if tokens[i], err = mint(auth.MintOptions{Subject: admins[i].String(), Role: auth.RoleAdmin, OrgID: orgs[i]}); err != nil {
			return nil, nil, err
		}
	}
	return orgs, tokens, nil
}

func (r fanoutReport) write(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "### SSE fan-out: %d streams over %d organizations\n\n", c.FanoutStreams, c.FanoutOrgs)
	fmt.Fprintf(w, "PostgreSQL %s (fsync=%s, synchronous_commit=%s). %d events/s for %s after a %s warm-up, 1 per "+
		"transaction from %d connections, each event to the next organization in turn, so each reaches %d "+
		"streams; every stream on its own connection (connected in %s). Latencies run from the moment the "+
		"producer's commit returned, over every stream's every event.\n\n",
		r.env.version, r.env.fsync, r.env.syncCommit, c.FanoutRate, c.FanoutPhase, c.Warmup, r.producers,
		c.FanoutStreams/c.FanoutOrgs, r.connected.Round(time.Millisecond))
	p := r.prod
	fmt.Fprintf(w, "| Events committed | Achieved/s | Failed tx | Frames expected | Received | Missing | Repeated | "+
		"p50 ms | p95 ms | p99 ms | max ms | CPU bench | CPU server | CPU Postgres | CPU other |\n")
	fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| %d | %.1f | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n\n",
		p.events, p.rate(), p.errors, r.expected, r.received, r.expected-r.received, r.repeats,
		latCell(percentile(r.lat, 0.50)), latCell(percentile(r.lat, 0.95)), latCell(percentile(r.lat, 0.99)),
		latCell(percentile(r.lat, 1)), core(p.cpu.client), core(p.cpu.server), core(p.cpu.dbs), core(p.cpu.other))
	if p.cpu.other > noisyOther {
		fmt.Fprintf(w, "**Noisy run:** other processes used more than %.0f%% of a core; rerun on a quiet "+
			"machine before quoting these figures.\n\n", noisyOther*100)
	}
	rss := "unknown (" + r.rssErr + ")"
	if r.peakRSSKB > 0 {
		rss = fmt.Sprintf("%.1f MB", float64(r.peakRSSKB)/1024)
	}
	fmt.Fprintf(w, "Server VmRSS, largest sample during the measurement: %s. Reconnections: %d. Frames naming no "+
		"event of the run: %d.\n\n", rss, r.reconnects, r.stray)
	fmt.Fprintf(w, "| Target | Measured | Goal | Result |\n|---|---:|---:|---|\n")
	p99 := percentile(r.lat, 0.99)
	fmt.Fprintf(w, "| commit → frame p99, every stream | %s ms | ≤ %s ms | %s |\n", latCell(p99), millis(targetFanoutP99),
		verdict(len(r.lat) > 0, p99 <= targetFanoutP99))
	fmt.Fprintf(w, "| server RSS while streaming | %s | < %.0f MB | %s |\n", rss, targetFanoutRSS/1e6,
		verdict(r.peakRSSKB > 0, float64(r.peakRSSKB)*1024 < targetFanoutRSS))
	fmt.Fprintf(w, "| every frame once | %d missing, %d repeated | 0, 0 | %s |\n", r.expected-r.received, r.repeats,
		verdict(r.expected > 0, r.expected == r.received && r.repeats == 0))
}

func (r fanoutReport) failure() error { return r.prod.failure(SectionFanout) }
