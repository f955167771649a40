package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The tracing section (issue 12): what tracing costs single-fix ingest, as the rate with it on against
// off. Two server processes serve the same database: the one of the other sections, with no OTEL_*
// variable (OpenTelemetry's no-op tracer: instrumented code costs a no-op call), and a second one that
// scripts/bench.sh starts with OTEL_EXPORTER_OTLP_ENDPOINT at the collector in this process
// (http/protobuf) and OTEL_TRACES_SAMPLER=always_on: every request is traced, its spans exported by the
// SDK's batch span processor. Phase B1's work (apiSingle) runs against each in turn, tracingRounds times
// per arm with the same workers and seconds, the first arm alternating from round to round (off, on |
// on, off | off, on) so that neither always runs first and drift hits both; medians are compared.
// Prometheus metrics have no switch: both arms pay for them (BenchmarkObserveRequest in
// internal/telemetry measures that cost per request).

// tracingRounds is how many phases each arm runs.
const tracingRounds = 3

// Targets: the traced server keeps this share of the untraced one's rate; a traced request reaches the
// collector as at least its server span and its database batch span (else tracing was not really on).
const (
	targetTracedShare  = 0.90
	minSpansPerRequest = 2
)

// tracedRoute is the name of the measured requests' server spans.
const tracedRoute = "POST /locations"

// After the last phase, the collector waits for the batches the exporter still holds: it sends them at
// least every 5 s (OTEL_BSP_SCHEDULE_DELAY's default).
const (
	drainQuiet = 6 * time.Second
	drainLimit = 30 * time.Second
)

// tracingPhase is one measured phase and its arm.
type tracingPhase struct {
	measured
	traced bool
}

// tracingReport is everything the tracing section measured.
type tracingReport struct {
	cfg              Config
	env              dbEnv
	phases           []tracingPhase
	sent             int64 // requests sent to the traced server, warm-ups included
	col              collectorStats
	drained          time.Duration // the wait for the last spans after the last phase
	stored, inserted int64         // rows of the section's organization, and the rows its phases inserted
	tracedMem        memory
	tracedMemErr     error
}

func runTracing(ctx context.Context, cfg Config, env dbEnv, admin *pgxpool.Pool, hc *http.Client, col *collector,
	logf func(string, ...any)) (tracingReport, error) {
	rep := tracingReport{cfg: cfg, env: env}
	if err := waitReady(ctx, hc, cfg.TracedURL, 30*time.Second); err != nil {
		return rep, fmt.Errorf("traced server: %w", err)
	}
	logf("tracing: creating 1 organization, %d employees with open sessions and tokens", cfg.Employees)
	f, err := newFleet(ctx, admin, cfg.Employees, cfg.mint)
	if err != nil {
		return rep, err
	}
	for round := range tracingRounds {
		for k := range 2 {
			traced := (round+k)%2 == 1
			base, pid, arm := cfg.ServerURL, cfg.ServerPID, "off"
			if traced {
				base, pid, arm = cfg.TracedURL, cfg.TracedPID, "on"
			}
			p := apiSingle(hc, base, f, cfg.Concurrency)
			p.id, p.path = fmt.Sprintf("%s%d", arm, round+1), "`POST /locations`, tracing "+arm
			r, warm, err := measurePhase(ctx, p, cfg, admin, cpuProbe{server: pid, postmaster: env.postmaster}, logf)
			if err != nil {
				return rep, err
			}
			if !running(pid) {
				return rep, fmt.Errorf("the server with tracing %s (pid %d) is gone after phase %s; see its log", arm, pid, p.id)
			}
			rep.inserted += r.rows + warm.rows
			if traced {
				rep.sent += r.ops + warm.ops
			}
			rep.phases = append(rep.phases, tracingPhase{measured{p, r}, traced})
		}
	}
	logf("tracing: waiting for the last spans of %d traced requests", rep.sent)
	rep.drained = col.drain(rep.sent, drainQuiet, drainLimit)
	rep.col = col.stats()
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM gps_locations WHERE organization_id = $1`, f.orgID).
		Scan(&rep.stored); err != nil {
		return rep, fmt.Errorf("count rows: %w", err)
	}
	rep.tracedMem, rep.tracedMemErr = readMemory(cfg.TracedPID)
	return rep, nil
}

// median is the median over an arm's phases of f; negative (unknown) values are left out, and -1 is
// returned when none is known.
func (r tracingReport) median(traced bool, f func(measured) float64) float64 {
	var xs []float64
	for _, p := range r.phases {
		if x := f(p.measured); p.traced == traced && x >= 0 {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return -1
	}
	return median(xs)
}

func rate(p measured) float64 { return p.perSecond(p.ops) }

func p50ms(p measured) float64 {
	return float64(percentile(p.latencies, 0.50)) / float64(time.Millisecond)
}

func p99ms(p measured) float64 {
	return float64(percentile(p.latencies, 0.99)) / float64(time.Millisecond)
}

// serverMicros is the server's CPU per request in µs, -1 when unknown.
func serverMicros(p measured) float64 {
	if p.cpu.server < 0 || rate(p) <= 0 {
		return -1
	}
	return p.cpu.server * 1e6 / rate(p)
}

// share is on ÷ off, -1 when either is unknown.
func (r tracingReport) share() float64 {
	on, off := r.median(true, rate), r.median(false, rate)
	if on < 0 || off <= 0 {
		return -1
	}
	return on / off
}

// spansPerRequest is the spans received in the measured requests' traces per request sent, -1 before any.
func (r tracingReport) spansPerRequest() float64 {
	if r.sent == 0 {
		return -1
	}
	return float64(r.col.rootSpans) / float64(r.sent)
}

func (r tracingReport) write(w io.Writer) {
	c := r.cfg
	ids := make([]string, len(r.phases))
	for i, p := range r.phases {
		ids[i] = p.id
	}
	fmt.Fprintf(w, "### Tracing: single-fix ingest with tracing off and on\n\n")
	fmt.Fprintf(w, "%d CPU, %s/%s, %s; PostgreSQL %s (fsync=%s, synchronous_commit=%s); %d workers, %d employees "+
		"with open sessions; `POST /locations` (1 fix per request), %d phases per arm of %s after a %s warm-up, "+
		"in the order %s.\n\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), r.env.version,
		r.env.fsync, r.env.syncCommit, c.Concurrency, c.Employees, tracingRounds, c.Phase, c.Warmup, strings.Join(ids, ", "))
	fmt.Fprintf(w, "Off: the server of the other sections, with no `OTEL_*` variable (OpenTelemetry's no-op tracer). "+
		"On: a second `fieldtrack serve` on the same database with the same settings (but the listener and the webhook "+
		"worker, idle in this section) and `OTEL_EXPORTER_OTLP_ENDPOINT` (http/protobuf) at an OTLP/HTTP collector "+
		"inside ftbench, `OTEL_TRACES_SAMPLER=always_on`: every request traced, its spans exported by the SDK's batch "+
		"span processor. The collector decodes every export, so its CPU counts in \"CPU bench\" of the on phases. "+
		"Prometheus metrics are on in both arms (they have no switch): "+
		"`go test -run '^$' -bench Observe ./internal/telemetry/` measures their cost per request.\n\n")

	fmt.Fprintln(w, "| Phase | Tracing | req/s | p50 ms | p99 ms | Errors | CPU bench | CPU server | CPU Postgres | CPU other | Server CPU µs/req |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	phases := make([]measured, len(r.phases))
	for i, p := range r.phases {
		phases[i] = p.measured
		fmt.Fprintf(w, "| %s | %s | %.0f | %.2f | %.2f | %s | %s | %s | %s | %s | %s |\n", p.id,
			map[bool]string{false: "off", true: "on"}[p.traced], rate(p.measured), p50ms(p.measured), p99ms(p.measured),
			errorCell(p.result), core(p.cpu.client), core(p.cpu.server), core(p.cpu.dbs), core(p.cpu.other),
			micros(serverMicros(p.measured)))
	}
	fmt.Fprintf(w, "\nCPU is in %% of one core (this machine has %d). ", runtime.NumCPU())
	if noisy := noisyPhases(phases); len(noisy) > 0 {
		fmt.Fprintf(w, "**Noisy run:** other processes used more than %.0f%% of a core during %s; "+
			"rerun on a quiet machine before quoting these figures.\n\n", noisyOther*100, strings.Join(noisy, ", "))
	} else {
		fmt.Fprintf(w, "\"CPU other\" (the rest of the machine) stayed below %.0f%% of a core.\n\n", noisyOther*100)
	}

	share, spans := r.share(), r.spansPerRequest()
	fmt.Fprintln(w, "| Target | Measured | Goal | Result |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	fmt.Fprintf(w, "| req/s with tracing on ÷ off (medians: %.0f ÷ %.0f) | %s | ≥ %.3f | %s |\n",
		r.median(true, rate), r.median(false, rate), ratio(share), targetTracedShare,
		verdict(share >= 0, share >= targetTracedShare))
	fmt.Fprintf(w, "| spans received per traced request (%d spans in the %d traces of `%s`, %d requests sent, warm-ups included) | %s | ≥ %d | %s |\n\n",
		r.col.rootSpans, r.col.rootTraces, tracedRoute, r.sent, ratio(spans), minSpansPerRequest,
		verdict(spans >= 0, spans >= minSpansPerRequest))

	fmt.Fprintf(w, "Medians, off → on: p50 %.2f → %.2f ms, p99 %.2f → %.2f ms, server CPU per request %s → %s µs.\n\n",
		r.median(false, p50ms), r.median(true, p50ms), r.median(false, p99ms), r.median(true, p99ms),
		micros(r.median(false, serverMicros)), micros(r.median(true, serverMicros)))
	r.writeChecks(w)
}

// writeChecks is what the collector received, the row count, the traced server's memory and the first
// error of each phase.
func (r tracingReport) writeChecks(w io.Writer) {
	s := r.col
	arrived := -1.0
	if r.sent > 0 {
		arrived = float64(s.rootTraces) / float64(r.sent)
	}
	fmt.Fprintf(w, "Collector: %d exports (%.1f MB), %d refused; %d spans in all (%s). The server spans of %s of "+
		"the traced requests arrived; the wait for the last exports took %s.\n",
		s.exports, float64(s.bytes)/1e6, s.rejected, s.spans, spanNames(s.byName, 6), percent(arrived),
		r.drained.Round(100*time.Millisecond))
	check := "OK"
	if r.stored != r.inserted {
		check = "MISMATCH"
	}
	fmt.Fprintf(w, "\nRow check: gps_locations holds %d rows of this section's organization; its phases inserted %d "+
		"(warm-ups included): %s.\n", r.stored, r.inserted, check)
	if r.tracedMemErr == nil {
		fmt.Fprintf(w, "\nTraced server's memory at the end: VmRSS %s MB, VmHWM %s MB.\n",
			mb(r.tracedMem.rssKB), mb(r.tracedMem.peakKB))
	}
	for _, p := range r.phases {
		if p.firstErr != "" {
			fmt.Fprintf(w, "\n%s first error: `%s`\n", p.id, oneLine(p.firstErr, 300))
		}
	}
}

// spanNames lists the n most frequent span names with their counts ("`batch` 100, ...").
func spanNames(byName map[string]int64, n int) string {
	names := slices.SortedFunc(maps.Keys(byName), func(a, b string) int {
		return cmp.Or(cmp.Compare(byName[b], byName[a]), cmp.Compare(a, b))
	})
	if len(names) == 0 {
		return "none"
	}
	var parts []string
	var rest int64
	for i, name := range names {
		if i < n {
			parts = append(parts, fmt.Sprintf("`%s` %d", oneLine(name, 60), byName[name]))
		} else {
			rest += byName[name]
		}
	}
	if rest > 0 {
		parts = append(parts, fmt.Sprintf("%d spans of %d other names", rest, len(names)-n))
	}
	return strings.Join(parts, ", ")
}

// ratio shows a ratio a target checks with three decimals, so that 0.896 does not read as a 0.90 that
// misses ≥ 0.90.
func ratio(x float64) string {
	if x < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", x)
}

func micros(x float64) string {
	if x < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", x)
}

// failure is non-nil when a phase failed more than maxErrorShare of its requests (or made none), or when
// no traced request's span reached the collector: then the comparison measured nothing.
func (r tracingReport) failure() error {
	for _, p := range r.phases {
		if p.ops == 0 || float64(p.errors) > maxErrorShare*float64(p.ops) {
			return fmt.Errorf("tracing %s: %d of %d requests failed (%s)", p.id, p.errors, p.ops, p.firstErr)
		}
	}
	if r.col.rootTraces == 0 {
		return fmt.Errorf("tracing: no span of a traced `%s` reached the collector (%d exports, %d refused)",
			tracedRoute, r.col.exports, r.col.rejected)
	}
	return nil
}
