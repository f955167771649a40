package bench

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
)

// The export section: GET /admin/expenses/export of an organization with Config.ExportRows expenses,
// against the fastest way Postgres itself writes the same rows as CSV (COPY ... TO STDOUT), alternating
// exportRuns times. Each API run must bring every expense exactly once; the server's peak resident set
// during the runs shows whether the export streams (flat) or buffers (grows with the rows).

// exportRuns is how many times each side runs; the report gives medians.
const exportRuns = 3

// targetExportRSS is the server's peak resident set allowed during an export.
const targetExportRSS = 60e6 // bytes

// exportQuery is the export's rows in its order, for the raw side (COPY takes no parameters).
const exportQuery = `SELECT id, employee_code, employee_name, amount, description, status, rejection_comment,
       submitted_at, reviewed_at
  FROM app.expense_rows WHERE organization_id = '%s' ORDER BY submitted_at DESC, id`

type exportRun struct {
	elapsed time.Duration
	rows    int64
	bytes   int64
}

type exportReport struct {
	cfg            Config
	rows           int // expenses of the organization
	raw, api       []exportRun
	peakKB         int64  // server's peak resident set during the API runs
	peakHow        string // how peakKB was measured
	startKB        int64  // server's resident set before the first run
	missing, extra int    // of the last API run, against the organization's expenses
	err            error  // an API run that failed
}

func runExport(ctx context.Context, cfg Config, admin *pgxpool.Pool, logf func(string, ...any)) (exportReport, error) {
	rep := exportReport{cfg: cfg, rows: cfg.ExportRows}
	logf("export: creating 1 organization with %d expenses", cfg.ExportRows)
	org, token, err := newExportFixture(ctx, admin, cfg)
	if err != nil {
		return rep, err
	}
	if err := waitListenerCaughtUp(ctx, admin, time.Minute); err != nil {
		return rep, err
	}
	want, err := exportIDs(ctx, admin, org)
	if err != nil {
		return rep, err
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	if m, err := readMemory(cfg.ServerPID); err == nil {
		rep.startKB = m.rssKB
	}
	peak := startPeak(cfg.ServerPID)
	for i := range exportRuns {
		raw, err := rawExport(ctx, admin, org)
		if err != nil {
			return rep, err
		}
		rep.raw = append(rep.raw, raw)
		got, run, err := apiExport(ctx, hc, cfg.ServerURL, token)
		if err != nil {
			rep.err = err
			break
		}
		rep.api = append(rep.api, run)
		rep.missing, rep.extra = compareIDs(want, got)
		logf("export run %d: raw %s, API %s (%d rows)", i+1, raw.elapsed.Round(time.Millisecond),
			run.elapsed.Round(time.Millisecond), run.rows)
	}
	rep.peakKB, rep.peakHow = peak.stop()
	return rep, nil
}

// newExportFixture creates an organization with an admin, 100 employees and cfg.ExportRows expenses:
// every fifth approved, every seventh rejected with a comment, some descriptions a spreadsheet would
// run as a formula. The expenses are written 5,000 to a transaction, as a busy organization would
// (filing touches its employee's row: one transaction updating a row thousands of times is slow).
func newExportFixture(ctx context.Context, pool *pgxpool.Pool, cfg Config) (uuid.UUID, string, error) {
	org, adminID := uuid.New(), uuid.New()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO organizations (id, name) VALUES ($1, $2)`,
			org, "Benchmark export "+strconv.FormatInt(time.Now().Unix(), 10)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO users (organization_id, id, email, role) VALUES ($1, $2, $3, 'ADMIN')`,
			org, adminID, "bench-export-"+adminID.String()+"@example.test"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO employees (organization_id, name)
			SELECT $1, 'Export employee ' || i FROM generate_series(1, 100) i`, org)
		return err
	})
	if err != nil {
		return org, "", fmt.Errorf("export fixtures: %w", err)
	}
	const chunk = 5000
	for first := 1; first <= cfg.ExportRows; first += chunk {
		_, err := pool.Exec(ctx, `INSERT INTO expenses (organization_id, employee_id, amount, description, status,
		                          reviewed_at, reviewed_by, rejection_comment, submitted_at)
			SELECT $1, e.id, round((random() * 500)::numeric, 2) + 0.01,
			       CASE WHEN i % 50 = 0 THEN '=HYPERLINK("http://x")' ELSE 'Taxi, "airport" run ' || i END,
			       s.status, CASE WHEN s.status <> 'PENDING' THEN now() END,
			       CASE WHEN s.status <> 'PENDING' THEN $4 END,
			       CASE WHEN s.status = 'REJECTED' THEN 'No receipt for ' || i END,
			       now() - i * interval '1 minute'
			  FROM generate_series($2::int, $3::int) i
			  JOIN employees e ON e.organization_id = $1 AND e.employee_number = 1 + i % 100
			 CROSS JOIN LATERAL (SELECT CASE WHEN i % 7 = 0 THEN 'REJECTED' WHEN i % 5 = 0 THEN 'APPROVED'
			                                 ELSE 'PENDING' END AS status) s`,
			org, first, min(first+chunk-1, cfg.ExportRows), adminID.String())
		if err != nil {
			return org, "", fmt.Errorf("export fixtures: %w", err)
		}
	}
	token, err := cfg.mint(auth.MintOptions{Subject: adminID.String(), Role: auth.RoleAdmin, OrgID: org})
	return org, token, err
}

// waitListenerCaughtUp waits until the outbox listener has confirmed the WAL the fixtures wrote (their
// expense.created events), so that the runs do not compete with it. Without a slot there is nothing to
// wait for.
func waitListenerCaughtUp(ctx context.Context, pool *pgxpool.Pool, limit time.Duration) error {
	const caughtUp = 1 << 20 // bytes of WAL still held back
	deadline := time.Now().Add(limit)
	for {
		var lag int64
		if err := pool.QueryRow(ctx, `SELECT coalesce(app.slot_lag_bytes(), -1)`).Scan(&lag); err != nil {
			return fmt.Errorf("slot lag: %w", err)
		}
		if lag < caughtUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the outbox listener still holds back %d bytes of WAL after %s", lag, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func exportIDs(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT id::text FROM expenses WHERE organization_id = $1 ORDER BY id`, org)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// rawExport is COPY of the export's query to CSV, read and discarded by this process.
func rawExport(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID) (exportRun, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return exportRun{}, err
	}
	defer conn.Release()
	var n countingWriter
	start := time.Now()
	tag, err := conn.Conn().PgConn().CopyTo(ctx, &n, "COPY ("+fmt.Sprintf(exportQuery, org)+") TO STDOUT (FORMAT csv, HEADER)")
	if err != nil {
		return exportRun{}, fmt.Errorf("raw export: %w", err)
	}
	return exportRun{elapsed: time.Since(start), rows: tag.RowsAffected(), bytes: n.n}, nil
}

// apiExport downloads the export as the dashboard does and returns the ids of its rows, sorted.
func apiExport(ctx context.Context, hc *http.Client, base, token string) ([]string, exportRun, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/admin/expenses/export", nil)
	if err != nil {
		return nil, exportRun{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, exportRun{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, exportRun{}, fmt.Errorf("export: HTTP %d: %s", resp.StatusCode, body)
	}
	body := &countingReader{r: resp.Body}
	r := csv.NewReader(body)
	r.ReuseRecord = true
	var ids []string
	for header := true; ; header = false {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, exportRun{}, fmt.Errorf("export: row %d: %w", len(ids)+1, err)
		}
		if !header {
			ids = append(ids, rec[0])
		}
	}
	run := exportRun{elapsed: time.Since(start), rows: int64(len(ids)), bytes: body.n}
	slices.Sort(ids)
	return ids, run, nil
}

// compareIDs counts the ids of want that got lacks and the rows of got that are not in want once.
func compareIDs(want, got []string) (missing, extra int) {
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i] < got[j]):
			missing++
			i++
		case i == len(want) || got[j] < want[i]:
			extra++
			j++
		default: // equal: a duplicate of it in got counts as extra
			i++
			j++
		}
	}
	return missing, extra
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// peakProbe measures a process's peak resident set from now on: Linux resets VmHWM when "5" is written
// to /proc/<pid>/clear_refs; where that is refused, VmRSS is sampled every 5 ms instead.
type peakProbe struct {
	pid     int
	reset   bool
	sampled atomic.Int64
	done    chan struct{}
	stopped chan struct{}
}

func startPeak(pid int) *peakProbe {
	p := &peakProbe{pid: pid, done: make(chan struct{}), stopped: make(chan struct{})}
	if pid > 0 && os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0) == nil {
		p.reset = true
		close(p.stopped)
		return p
	}
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := readMemory(pid); err == nil && m.rssKB > p.sampled.Load() {
				p.sampled.Store(m.rssKB)
			}
			select {
			case <-p.done:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// stop returns the peak in kB (0 when unknown) and how it was measured.
func (p *peakProbe) stop() (int64, string) {
	close(p.done)
	<-p.stopped
	if p.reset {
		m, err := readMemory(p.pid)
		if err != nil {
			return 0, "unknown"
		}
		return m.peakKB, "VmHWM, reset before the runs"
	}
	return p.sampled.Load(), "VmRSS sampled every 5 ms"
}

func (r exportReport) write(w io.Writer) {
	fmt.Fprintf(w, "### CSV export: every expense of an organization\n\n")
	fmt.Fprintf(w, "%d CPU, %s; %d expenses (every 5th approved, every 7th rejected with a comment); "+
		"%d alternating runs of each side, medians.\n\n", runtime.NumCPU(), runtime.Version(), r.rows, exportRuns)
	fmt.Fprintln(w, "| Path | Rows | MB | Median s | Rows/s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	rawRate, apiRate := -1.0, -1.0
	for _, side := range []struct {
		name string
		runs []exportRun
		rate *float64
	}{{"raw: COPY (export query) TO STDOUT (FORMAT csv)", r.raw, &rawRate},
		{"API: GET /admin/expenses/export", r.api, &apiRate}} {
		if len(side.runs) == 0 {
			fmt.Fprintf(w, "| %s | n/a | n/a | n/a | n/a |\n", side.name)
			continue
		}
		m := medianRun(side.runs)
		*side.rate = float64(m.rows) / m.elapsed.Seconds()
		fmt.Fprintf(w, "| %s | %d | %.1f | %.3f | %.0f |\n", side.name, m.rows, float64(m.bytes)/1e6,
			m.elapsed.Seconds(), *side.rate)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Target | Measured | Goal | Result |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	share := -1.0
	if rawRate > 0 && apiRate >= 0 {
		share = apiRate / rawRate
	}
	fmt.Fprintf(w, "| API/raw rows/s | %s | reported | — |\n", percent(share))
	complete := r.err == nil && len(r.api) == exportRuns && r.missing == 0 && r.extra == 0
	fmt.Fprintf(w, "| Every expense exactly once (last run) | %d missing, %d extra | 0, 0 | %s |\n",
		r.missing, r.extra, verdict(r.err == nil && len(r.api) > 0, complete))
	peak := float64(r.peakKB) * 1024
	fmt.Fprintf(w, "| Server peak RSS during the API runs (%s; %s MB before) | %s MB | < %.0f MB | %s |\n",
		r.peakHow, mb(r.startKB), mb(r.peakKB), targetExportRSS/1e6, verdict(r.peakKB > 0, peak < targetExportRSS))
	if r.err != nil {
		fmt.Fprintf(w, "\nAPI run failed: `%s`\n", oneLine(r.err.Error(), 300))
	}
}

func medianRun(runs []exportRun) exportRun {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b exportRun) int { return cmp.Compare(a.elapsed, b.elapsed) })
	return s[len(s)/2]
}

// failure is non-nil when an API run failed or the export was not every expense exactly once.
func (r exportReport) failure() error {
	switch {
	case r.err != nil:
		return fmt.Errorf("export: %w", r.err)
	case len(r.api) != exportRuns:
		return fmt.Errorf("export: %d of %d API runs", len(r.api), exportRuns)
	case r.missing > 0 || r.extra > 0:
		return fmt.Errorf("export: %d expenses missing, %d rows extra", r.missing, r.extra)
	}
	return nil
}
