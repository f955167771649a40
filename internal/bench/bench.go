package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// maxErrorShare is the share of failed units above which a phase (and so the run) fails.
const maxErrorShare = 0.01

// measured is one phase and its measured run.
type measured struct {
	phase
	result
}

// Run runs the sections cfg asks for (all but volume by default), in the order GPS, events, fan-out, export,
// snapshots, auth, tracing, distance, volume, and writes each one's report as Markdown to out as soon as it
// is done; progress goes to logw.
// It returns an error when set-up fails or when a section failed more than 1% of its units (phases,
// producer transactions); a missed target is reported, not an error.
func Run(ctx context.Context, cfg Config, out, logw io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(logw, "ftbench: "+format+"\n", args...) }
	hc := newHTTPClient(cfg.Concurrency)
	if err := waitReady(ctx, hc, cfg.ServerURL, 30*time.Second); err != nil {
		return err
	}
	admin, err := db.NewPool(ctx, db.PoolConfig{URL: cfg.DatabaseURL, MaxConns: 2})
	if err != nil {
		return err
	}
	defer admin.Close()
	env, err := describeDatabase(ctx, admin)
	if err != nil {
		return err
	}
	probe := cpuProbe{server: cfg.ServerPID, postmaster: env.postmaster}
	var col *collector
	if cfg.runs(SectionTracing) {
		// From the start: the traced server exports the spans of every request it answers, from its first
		// readiness check on.
		if col, err = startCollector(cfg.CollectorAddr, tracedRoute); err != nil {
			return err
		}
		defer col.close()
	}

	// Each section's report goes out as soon as it is done, a blank line between two.
	sections := []struct {
		name string
		run  func() (sectionReport, error)
	}{
		{SectionGPS, func() (sectionReport, error) { return runGPS(ctx, cfg, env, admin, hc, probe, logf) }},
		{SectionEvents, func() (sectionReport, error) { return runEvents(ctx, cfg, env, admin, probe, logf) }},
		{SectionFanout, func() (sectionReport, error) { return runFanout(ctx, cfg, env, admin, probe, logf) }},
		{SectionExport, func() (sectionReport, error) { return runExport(ctx, cfg, admin, logf) }},
		{SectionSnapshots, func() (sectionReport, error) { return runSnapshots(ctx, cfg, admin, hc, probe, logf) }},
		{SectionAuth, func() (sectionReport, error) { return runAuth(ctx, cfg, admin, hc, logf) }},
		{SectionTracing, func() (sectionReport, error) { return runTracing(ctx, cfg, env, admin, hc, col, logf) }},
		{SectionDistance, func() (sectionReport, error) { return runDistance(ctx, cfg, admin, hc, logf) }},
		{SectionVolume, func() (sectionReport, error) { return runVolume(ctx, cfg, admin, hc, probe, logf) }},
	}
	var failed []error
	written := false
	for _, sec := range sections {
		if !cfg.runs(sec.name) {
			continue
		}
		rep, err := sec.run()
		if err != nil {
			return errors.Join(append(failed, err)...)
		}
		if written {
			fmt.Fprintln(out)
		}
		rep.write(out)
		written = true
		failed = append(failed, rep.failure())
	}
	return errors.Join(failed...)
}

// sectionReport is what a section measured: written as Markdown, and an error when more than 1% of its
// units failed.
type sectionReport interface {
	write(io.Writer)
	failure() error
}

// runGPS sets up the fixtures, runs the phases A1 (raw single), B1 (API single), A2 (raw batch) and
// B2 (API batch), each after an uncounted warm-up, and checks the row count.
func runGPS(ctx context.Context, cfg Config, env dbEnv, admin *pgxpool.Pool, hc *http.Client, probe cpuProbe,
	logf func(string, ...any)) (report, error) {
	logf("creating 1 organization, %d employees with open sessions and tokens", cfg.Employees)
	f, err := newFleet(ctx, admin, cfg.Employees, cfg.mint)
	if err != nil {
		return report{}, err
	}
	resume, err := pauseCron(ctx, admin, logf)
	if err != nil {
		return report{}, err
	}
	defer resume()
	var (
		phases   []measured
		warmRows int64
		apiRSS   int64 // server VmRSS (kB) after the last API phase
	)
	for _, id := range phaseOrder {
		p, done, err := preparePhase(ctx, id, cfg, f, hc)
		if err != nil {
			return report{}, err
		}
		r, warm, err := measurePhase(ctx, p, cfg, admin, probe, logf)
		done()
		if err != nil {
			return report{}, err
		}
		if !running(cfg.ServerPID) {
			return report{}, fmt.Errorf("the server (pid %d) is gone after phase %s; see its log", cfg.ServerPID, p.id)
		}
		warmRows += warm.rows
		if p.api {
			if m, err := readMemory(cfg.ServerPID); err == nil {
				apiRSS = m.rssKB
			}
		}
		phases = append(phases, measured{p, r})
	}

	var stored int64
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM gps_locations WHERE organization_id = $1`, f.orgID).
		Scan(&stored); err != nil {
		return report{}, fmt.Errorf("count rows: %w", err)
	}
	rep := report{cfg: cfg, env: env, phases: phases, stored: stored, warmRows: warmRows, apiRSS: apiRSS}
	rep.memory, rep.memoryErr = readMemory(cfg.ServerPID)
	return rep, nil
}

// phaseOrder interleaves raw and API phases, so slow drift of the machine or the table affects both sides.
var phaseOrder = []string{"A1", "B1", "A2", "B2"}

// preparePhase builds a phase; done releases what it holds (the raw phases' own pool, so its
// connections do not sit idle beside the server's during the API phases).
func preparePhase(ctx context.Context, id string, cfg Config, f *fleet, hc *http.Client) (phase, func(), error) {
	switch id {
	case "B1":
		return apiSingle(hc, cfg.ServerURL, f, cfg.Concurrency), func() {}, nil
	case "B2":
		return apiBatch(hc, cfg.ServerURL, f, cfg.Concurrency), func() {}, nil
	}
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: cfg.DatabaseURL, MaxConns: int32(cfg.Concurrency)})
	if err != nil {
		return phase{}, nil, err
	}
	if id == "A1" {
		return rawSingle(pool, f, cfg.Concurrency), pool.Close, nil
	}
	return rawBatch(pool, f, cfg.Concurrency), pool.Close, nil
}

// measurePhase checkpoints, warms up and measures p, with the CPU each party used during the measured
// run; it returns the measured run and the warm-up's (whose rows and requests count too).
func measurePhase(ctx context.Context, p phase, cfg Config, admin *pgxpool.Pool, probe cpuProbe,
	logf func(string, ...any)) (r, warm result, err error) {
	// A checkpoint now rather than in the middle of a phase keeps the phases comparable.
	if _, err := admin.Exec(ctx, "CHECKPOINT"); err != nil {
		return result{}, result{}, fmt.Errorf("checkpoint: %w", err)
	}
	if cfg.Warmup > 0 {
		logf("%s %s: warm-up %s", p.id, p.path, cfg.Warmup)
		warm = run(ctx, p, cfg.Concurrency, cfg.Warmup)
		if warm.errors > 0 {
			logf("%s warm-up: %d of %d failed, first: %s", p.id, warm.errors, warm.ops, warm.firstErr)
		}
	}
	logf("%s %s: measuring %s with %d workers", p.id, p.path, cfg.Phase, cfg.Concurrency)
	before := probe.sample()
	r = run(ctx, p, cfg.Concurrency, cfg.Phase)
	r.cpu = cpuBetween(before, probe.sample())
	logf("%s: %.0f rows/s, %d errors", p.id, r.perSecond(r.rows), r.errors)
	return r, warm, ctx.Err()
}

// waitReady polls GET /ready until it answers 200, for at most limit.
func waitReady(ctx context.Context, hc *http.Client, base string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ready", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("server at %s not ready after %s: %w", base, limit, errors.Join(last, ctx.Err()))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dbEnv describes the database for the report's header.
type dbEnv struct {
	version, fsync, syncCommit string
	postmaster                 int // 0 when the cluster's processes cannot be seen
}

func describeDatabase(ctx context.Context, pool *pgxpool.Pool) (dbEnv, error) {
	var e dbEnv
	var backend int
	err := pool.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('synchronous_commit'), pg_backend_pid()`).Scan(&e.version, &e.fsync, &e.syncCommit, &backend)
	if err != nil {
		return e, fmt.Errorf("database: %w", err)
	}
	if st, ok := readProcStat(backend); ok {
		e.postmaster = st.ppid
	}
	return e, nil
}
