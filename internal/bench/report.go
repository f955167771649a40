package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// Targets the report checks: the API keeps this share of the raw insert rate (the floor, and issue 14's
// targets above it), and the server stays below this peak resident set.
const (
	targetSingleShare  = 0.40
	targetBatchShare   = 0.50
	issue14SingleShare = 0.55
	issue14BatchShare  = 0.85
	targetPeakRSS      = 150e6 // bytes
)

// report is everything a run measured, written as Markdown.
type report struct {
	cfg       Config
	env       dbEnv
	phases    []measured
	stored    int64 // rows of the benchmark organization in gps_locations
	warmRows  int64 // rows the warm-ups inserted
	memory    memory
	memoryErr error
	apiRSS    int64 // server VmRSS (kB) right after the last API phase
}

func (r report) phase(id string) (measured, bool) {
	for _, p := range r.phases {
		if p.id == id {
			return p, true
		}
	}
	return measured{}, false
}

// inserted is every row the run inserted, warm-ups included.
func (r report) inserted() int64 {
	n := r.warmRows
	for _, p := range r.phases {
		n += p.rows
	}
	return n
}

func (r report) write(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "### GPS ingest: raw SQL vs HTTP API\n\n")
	fmt.Fprintf(w, "%d CPU, %s/%s, %s; PostgreSQL %s (fsync=%s, synchronous_commit=%s); "+
		"%d workers, %d employees with open sessions; %s per phase after a %s warm-up.\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), r.env.version, r.env.fsync,
		r.env.syncCommit, c.Concurrency, c.Employees, c.Phase, c.Warmup)
	fmt.Fprintf(w, "pg_cron's jobs are paused during the phases (the minute's measure of open sessions would take up to "+
		"three quarters of a core from whichever phase it fell in).\n\n")
	r.writePhases(w)
	r.writeTargets(w)
	r.writeChecks(w)
}

// writePhases is the table of phases and the note on CPU noise.
func (r report) writePhases(w io.Writer) {
	fmt.Fprintln(w, "| Phase | Path | Tx or req/s | Rows/s | p50 ms | p99 ms | Errors | CPU bench | CPU server | CPU Postgres | CPU other |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range r.phases {
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s |\n",
			p.id, p.path, p.perSecond(p.ops), p.perSecond(p.rows),
			millis(percentile(p.latencies, 0.50)), millis(percentile(p.latencies, 0.99)),
			errorCell(p.result), core(p.cpu.client), core(p.cpu.server), core(p.cpu.dbs), core(p.cpu.other))
	}
	fmt.Fprintf(w, "\nCPU is in %% of one core (this machine has %d). ", runtime.NumCPU())
	if noisy := noisyPhases(r.phases); len(noisy) > 0 {
		fmt.Fprintf(w, "**Noisy run:** other processes used more than %.0f%% of a core during %s; "+
			"rerun on a quiet machine before quoting these figures.\n\n", noisyOther*100, strings.Join(noisy, ", "))
	} else {
		fmt.Fprintf(w, "\"CPU other\" (the rest of the machine) stayed below %.0f%% of a core.\n\n", noisyOther*100)
	}
}

// writeTargets is the table of targets with PASS/MISS.
func (r report) writeTargets(w io.Writer) {
	fmt.Fprintln(w, "| Target | Measured | Goal | Result |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	for _, t := range []struct{ name, api, raw string }{{"single", "B1", "A1"}, {"batch", "B2", "A2"}} {
		goal := targetSingleShare
		if t.name == "batch" {
			goal = targetBatchShare
		}
		api, ok1 := r.phase(t.api)
		raw, ok2 := r.phase(t.raw)
		share := -1.0
		if ok1 && ok2 && raw.rows > 0 {
			share = api.perSecond(api.rows) / raw.perSecond(raw.rows)
		}
		fmt.Fprintf(w, "| API/raw rows/s, %s (%s/%s) | %s | ≥ %.0f%% | %s |\n",
			t.name, t.api, t.raw, percent(share), goal*100, verdict(share >= 0, share >= goal))
		goal = map[string]float64{"single": issue14SingleShare, "batch": issue14BatchShare}[t.name]
		fmt.Fprintf(w, "| the same, issue 14's target | %s | ≥ %.0f%% | %s |\n",
			percent(share), goal*100, verdict(share >= 0, share >= goal))
	}
	if r.memoryErr != nil {
		fmt.Fprintf(w, "| Server peak RSS (VmHWM) | unknown | < %.0f MB | MISS |\n", targetPeakRSS/1e6)
	} else {
		peak := float64(r.memory.peakKB) * 1024
		fmt.Fprintf(w, "| Server peak RSS (VmHWM; VmRSS %s MB after the API phases) | %.1f MB | < %.0f MB | %s |\n",
			mb(r.apiRSS), peak/1e6, targetPeakRSS/1e6, verdict(true, peak < targetPeakRSS))
	}
	fmt.Fprintln(w)
}

// writeChecks is the row-count check and the first error of each phase.
func (r report) writeChecks(w io.Writer) {
	check := "OK"
	if r.stored != r.inserted() {
		check = "MISMATCH"
	}
	fmt.Fprintf(w, "Row check: gps_locations holds %d rows; the phases inserted %d (%d of them in warm-ups): %s.\n",
		r.stored, r.inserted(), r.warmRows, check)
	if r.memoryErr != nil {
		fmt.Fprintf(w, "\nServer memory unknown: %v\n", r.memoryErr)
	}
	for _, p := range r.phases {
		if p.firstErr != "" {
			fmt.Fprintf(w, "\n%s first error: `%s`\n", p.id, oneLine(p.firstErr, 300))
		}
	}
}

// noisyOther is the share of a core the rest of the machine may use during a phase before the report
// calls the run noisy.
const noisyOther = 0.15

// noisyPhases names the phases during which the rest of the machine used more than noisyOther.
func noisyPhases(phases []measured) []string {
	var ids []string
	for _, p := range phases {
		if p.cpu.other > noisyOther {
			ids = append(ids, p.id)
		}
	}
	return ids
}

// failure is non-nil when a phase failed more than maxErrorShare of its units (or did none at all).
func (r report) failure() error {
	var bad []string
	for _, p := range r.phases {
		if p.ops == 0 || float64(p.errors) > maxErrorShare*float64(p.ops) {
			bad = append(bad, fmt.Sprintf("%s (%d of %d failed)", p.id, p.errors, p.ops))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("more than %.0f%% errors: %s", maxErrorShare*100, strings.Join(bad, ", "))
	}
	return nil
}

func millis(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func errorCell(r result) string {
	s := fmt.Sprintf("%d", r.errors)
	if r.dups > 0 {
		s += fmt.Sprintf(" (+%d dup)", r.dups)
	}
	return s
}

// core formats a share of one core as a percentage ("n/a" when unknown).
func core(x float64) string {
	if x < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", x*100)
}

func percent(x float64) string {
	if x < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", x*100)
}

func mb(kb int64) string {
	if kb <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(kb)*1024/1e6)
}

func verdict(known, pass bool) string {
	if known && pass {
		return "PASS"
	}
	return "MISS"
}

// oneLine makes an error body fit a Markdown line: no newlines or backticks, at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "`", "'")), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// The events section's report ---------------------------------------------------------------------------

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
	slot      string // the outbox slot's name

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
		fmt.Fprintf(w, "Slot lag at the end (`app.slot_lag_bytes()`): %d bytes.\n", *r.slotLag)
	} else {
		fmt.Fprintf(w, "Slot lag at the end: slot %s not found.\n", r.slot)
	}
	if r.unstamped > 0 {
		fmt.Fprintf(w, "\n**%d committed events never got a stream position** (no hand-off: neither SSE nor webhook "+
			"can see them) although the slot was confirmed to within %s of the WAL end; measured ones include seq %v.\n",
			r.unstamped, lagText(r.slotLag), r.unstampedSeqs)
	}
	switch l := r.listener; {
	case l.err != "":
		fmt.Fprintf(w, "\nListener status unknown (`GET /metrics`): `%s`\n", oneLine(l.err, 200))
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
func (r eventsReport) failure() error { return r.prod.failure(SectionEvents) }

// failure is an error naming section when none of the production's transactions committed or more than
// maxErrorShare of them failed.
func (p production) failure(section string) error {
	n := p.txs + p.errors
	if n == 0 || float64(p.errors) > maxErrorShare*float64(n) {
		return fmt.Errorf("%s: more than %.0f%% of the producer's transactions failed (%d of %d)",
			section, maxErrorShare*100, p.errors, n)
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
