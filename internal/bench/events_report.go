package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// Targets of the events section (issue: "at 500 events/s"): p99 from commit to the SSE frame and to the
// first webhook attempt, and the share of the target rate the producer must reach for them to count as
// measured at that rate.
const (
	targetSSE       = 100 * time.Millisecond
	targetHook      = 500 * time.Millisecond
	targetRateShare = 0.99
)

// latencyPath is one measured path: latencies sorted, missing ones (never arrived) last.
type latencyPath struct {
	name   string
	lat    []time.Duration
	target time.Duration // goal for its p99; 0 = none
}

func (p latencyPath) missing() int {
	n := 0
	for i := len(p.lat) - 1; i >= 0 && p.lat[i] == missing; i-- {
		n++
	}
	return n
}

// eventsReport is everything the events section measured, written as Markdown.
type eventsReport struct {
	cfg       Config
	env       dbEnv
	server    serverSettings
	producers int
	https     bool
	slot      outboxSlot

	warm, prod production
	monitor    *pipelineMonitor
	drained    time.Duration // wait after producing until everything had arrived (or the limit)
	paths      []latencyPath

	attempts, repeated, hookStray, sseStray int64
	sseReconnects                           int
	sseEndErr                               string
	deliveries                              deliveryStats
	slotLag                                 *int64
	unstamped                               int64   // events of the organization still without a stream position
	unstampedSeqs                           []int64 // a few measured ones, for the log
	listener                                listenerStatus
	memory                                  memory
	memoryErr                               error
}

func (r eventsReport) path(target time.Duration) (latencyPath, bool) {
	for _, p := range r.paths {
		if p.target == target && target > 0 {
			return p, true
		}
	}
	return latencyPath{}, false
}

func (r eventsReport) write(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "### Events: commit → SSE and commit → first webhook attempt\n\n")
	perTx := "1 event per transaction"
	if c.EventsPerTx > 1 {
		perTx = fmt.Sprintf("%d events per transaction", c.EventsPerTx)
	}
	scheme := "http"
	if r.https {
		scheme = "https"
	}
	fmt.Fprintf(w, "%d CPU, %s/%s, %s; PostgreSQL %s (fsync=%s, synchronous_commit=%s). "+
		"Target %d events/s for %s after a %s warm-up, %s (`SELECT app.emit(…)` as the owner, autocommit) "+
		"from %d connections; one webhook subscribed to `%s` (receiver in ftbench, %s on loopback) and one "+
		"SSE client on `GET /admin/events`, in an organization of their own. Latencies run from the moment "+
		"the producer's commit returned. Server: %s.\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), r.env.version, r.env.fsync,
		r.env.syncCommit, c.EventsRate, c.EventsPhase, c.Warmup, perTx, r.producers, eventsType,
		scheme, r.server.describe())

	p := r.prod
	fmt.Fprintln(w, "| Events committed | Target/s | Achieved/s | Failed tx | Commit p50 ms | Commit p99 ms | CPU bench | CPU server | CPU Postgres | CPU other |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| %d of %d | %d | %.1f | %d | %s | %s | %s | %s | %s | %s |\n\n",
		p.events, p.planned, c.EventsRate, p.rate(), p.errors,
		millis(percentile(p.commitLat, 0.50)), millis(percentile(p.commitLat, 0.99)),
		core(p.cpu.client), core(p.cpu.server), core(p.cpu.dbs), core(p.cpu.other))

	fmt.Fprintln(w, "| Path | Received | Missing | p50 ms | p95 ms | p99 ms | max ms |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, lp := range r.paths {
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s |\n", lp.name, len(lp.lat)-lp.missing(), lp.missing(),
			latCell(percentile(lp.lat, 0.50)), latCell(percentile(lp.lat, 0.95)),
			latCell(percentile(lp.lat, 0.99)), latCell(percentile(lp.lat, 1)))
	}
	fmt.Fprintf(w, "\nCPU (%% of one core, this machine has %d) covers the measured production, not the "+
		"drain after it. ", runtime.NumCPU())
	if p.cpu.other > noisyOther {
		fmt.Fprintf(w, "**Noisy run:** other processes used more than %.0f%% of a core; rerun on a quiet "+
			"machine before quoting these figures. ", noisyOther*100)
	}
	fmt.Fprintf(w, "The hand-off rows use `webhook_events.dispatched_at` (the start of the listener's hand-off "+
		"transaction, Postgres's clock) and split each latency into the listener's part and the SSE fan-out's "+
		"or the webhook worker's.\n\n")

	r.writeTargets(w)
	r.writeChecks(w)
}

func (r eventsReport) writeTargets(w io.Writer) {
	fmt.Fprintln(w, "| Target | Measured | Goal | Result |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	c := r.cfg
	share := -1.0
	if c.EventsRate > 0 {
		share = r.prod.rate() / float64(c.EventsRate)
	}
	fmt.Fprintf(w, "| Outbox insert rate sustained (precondition of the two below) | %.1f/s | ≥ %.0f%% of %d/s | %s |\n",
		r.prod.rate(), targetRateShare*100, c.EventsRate, verdict(share >= 0, share >= targetRateShare))
	for _, t := range []struct {
		name string
		goal time.Duration
	}{{"commit → SSE p99", targetSSE}, {"commit → first webhook attempt p99", targetHook}} {
		lp, ok := r.path(t.goal)
		p99, measured := percentile(lp.lat, 0.99), "no events"
		if ok && len(lp.lat) > 0 {
			measured = latCell(p99)
			if p99 != missing {
				measured += " ms"
			}
		}
		fmt.Fprintf(w, "| %s | %s | < %s ms | %s |\n", t.name, measured, millis(t.goal),
			verdict(ok && len(lp.lat) > 0, p99 < t.goal))
	}
	fmt.Fprintln(w)
}

func (r eventsReport) writeChecks(w io.Writer) {
	d := r.deliveries
	fmt.Fprintf(w, "Pipeline: ")
	if m := r.monitor; m != nil && m.samples > 0 {
		fmt.Fprintf(w, "while producing, at most %d events waited for the listener's hand-off (outbox backlog) and "+
			"at most %d deliveries were pending (%d samples, one a second). ", m.maxBacklog, m.maxPending, m.samples)
	}
	fmt.Fprintf(w, "After producing, the wait for the last arrivals took %s (limit %s). ",
		r.drained.Round(time.Millisecond), eventsDrain)
	fmt.Fprintf(w, "Webhook: %d requests received, %d of them repeated a webhook-id; deliveries recorded %d "+
		"(%d success, %d pending, %d failed, %d attempts counted). ",
		r.attempts, r.repeated, d.total, d.success, d.pending, d.failed, d.attempts)
	fmt.Fprintf(w, "SSE reconnections: %d. ", r.sseReconnects)
	if r.slotLag != nil {
		fmt.Fprintf(w, "Slot lag at the end (`%s`): %d bytes.\n", strings.TrimPrefix(r.slot.lagSQL, "SELECT "), *r.slotLag)
	} else {
		fmt.Fprintf(w, "Slot lag at the end: slot %s not found.\n", r.slot.name)
	}
	if r.unstamped > 0 {
		fmt.Fprintf(w, "\n**%d committed events never got a stream position** (no hand-off: neither SSE nor webhook "+
			"can see them) although the slot was confirmed to within %s of the WAL end; measured ones include seq %v.\n",
			r.unstamped, lagText(r.slotLag), r.unstampedSeqs)
	}
	switch l := r.listener; {
	case l.err != "":
		fmt.Fprintf(w, "\nListener status unknown (`GET /admin/system-health`): `%s`\n", oneLine(l.err, 200))
	case l.lastError != "":
		fmt.Fprintf(w, "\nListener (this process): %s events handed off since start; last error `%s`.\n",
			l.handedOff, oneLine(l.lastError, 300))
	default:
		fmt.Fprintf(w, "\nListener (this process): %s events handed off since start, no error since start.\n", l.handedOff)
	}
	if r.warm.planned > 0 {
		fmt.Fprintf(w, "\nWarm-up (not counted): %d of %d events committed, %d failed tx.\n",
			r.warm.events, r.warm.planned, r.warm.errors)
	}
	if r.prod.shortfall > 0 {
		fmt.Fprintf(w, "\n%d scheduled events were never sent: the producers were still behind at the deadline.\n",
			r.prod.shortfall)
	}
	if r.hookStray > 0 || r.sseStray > 0 {
		fmt.Fprintf(w, "\nUnmatched: %d webhook requests and %d SSE frames named no event of this run.\n",
			r.hookStray, r.sseStray)
	}
	if d.lastError != "" {
		fmt.Fprintf(w, "\nA delivery's last error: `%s`\n", oneLine(d.lastError, 300))
	}
	if r.sseEndErr != "" {
		fmt.Fprintf(w, "\nSSE stream ended early: `%s`\n", oneLine(r.sseEndErr, 300))
	}
	if r.prod.firstErr != "" {
		fmt.Fprintf(w, "\nProducer first error: `%s`\n", oneLine(r.prod.firstErr, 300))
	}
	if r.memoryErr == nil {
		fmt.Fprintf(w, "\nServer memory at the end: VmRSS %s MB, VmHWM %s MB.\n", mb(r.memory.rssKB), mb(r.memory.peakKB))
	}
}

// failure is non-nil when more than maxErrorShare of the producer's transactions failed (or none ran).
func (r eventsReport) failure() error {
	p := r.prod
	n := p.txs + p.errors
	if n == 0 || float64(p.errors) > maxErrorShare*float64(n) {
		return fmt.Errorf("events: more than %.0f%% of the producer's transactions failed (%d of %d)",
			maxErrorShare*100, p.errors, n)
	}
	return nil
}

func lagText(lag *int64) string {
	if lag == nil {
		return "unknown"
	}
	return fmt.Sprintf("%d bytes", *lag)
}

// describe is the server's settings that matter to the events section.
func (s serverSettings) describe() string {
	if !s.known {
		return "settings unknown (" + s.err + ")"
	}
	c := s.cfg
	onOff := map[bool]string{true: "on", false: "off"}
	return fmt.Sprintf("APP_ENV=%s, listener %s, webhook worker %s (concurrency %d, poll interval %s), "+
		"DB_MAX_CONNS %d", c.AppEnv, onOff[c.ListenerEnabled], onOff[c.WebhookWorkerEnabled],
		c.WebhookConcurrency, c.WebhookPollInterval, c.DBMaxConns)
}

// latCell formats a latency in ms, or "missing" for an event that never arrived.
func latCell(d time.Duration) string {
	if d == missing {
		return "missing"
	}
	return millis(d)
}
