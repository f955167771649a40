package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	schema "github.com/fieldtrack/fieldtrack/sql"
)

// The snapshots section (sql/000014):
//  1. Admin reads at two GPS volumes: an organization of SnapshotEmployees employees and
//     SnapshotSessions closed sessions, first with 10 fixes on each employee's latest session, then with
//     SnapshotPoints fixes in all; p50/p99 of GET /admin/dashboard, /admin/leaderboard and /admin/sessions
//     at each. The rows are bulk-loaded with triggers off (session_replication_role = replica) and the
//     snapshots built by reconciliation, which is timed: a full build, a check that finds nothing, and
//     the repair after the points.
//  2. Ingest with and without the snapshot work of the fixes' trigger: phase B1 (POST /locations, one fix
//     per request) alternately with the trigger of this release and with the one before it (000006),
//     ingestRuns times each. (Fixes for open sessions only: late fixes' recalculation is the same work
//     with or without the snapshots.)
//  3. Hot rows: check-out/check-in cycles of Concurrency employees of one organization, against the same
//     load spread over Concurrency organizations. Writers queueing on an organization's row would make
//     the first much slower.

// snapshotRequests is how many times each admin route is called at each volume (one at a time).
const snapshotRequests = 200

// targetReadRatio is the largest p50 at SnapshotPoints fixes over the p50 at 10k allowed.
const targetReadRatio = 1.3

// targetTriggerCost is the largest share of single-fix ingest the snapshot work may cost.
const targetTriggerCost = 0.15

// plainFixesTrigger is the fixes' trigger before the snapshots, as 000006 made it (late fixes
// recalculate their closed session, nothing else), read from the embedded migration.
func plainFixesTrigger() (string, error) {
	src, err := fs.ReadFile(schema.Migrations, "000006_gps_and_distance.up.sql")
	if err != nil {
		return "", err
	}
	const head = "CREATE FUNCTION app.gps_locations_after_insert()"
	text := string(src)
	start := strings.Index(text, head)
	end := strings.Index(text[max(start, 0):], "\n$$;")
	if start < 0 || end < 0 {
		return "", errors.New("000006 has no app.gps_locations_after_insert to compare with")
	}
	return "CREATE OR REPLACE" + strings.TrimPrefix(text[start:start+end+3], "CREATE"), nil
}

type routeLatency struct {
	route    string
	p50, p99 time.Duration
}

type snapshotReport struct {
	cfg                         Config
	sessions, points            int64
	build, check, repair        time.Duration // reconciliation: full build, no-drift check, repair after the points
	buildRows, repairRows       int64         // rows it wrote
	small, large                []routeLatency
	withTrigger, withoutTrigger []float64 // B1 rows/s per run
	oneOrg, manyOrgs            float64   // check-out + check-in cycles per second
	err                         error
}

func runSnapshots(ctx context.Context, cfg Config, admin *pgxpool.Pool, hc *http.Client, probe cpuProbe,
	logf func(string, ...any)) (snapshotReport, error) {
	rep := snapshotReport{cfg: cfg}
	org, token, err := newSnapshotOrg(ctx, admin, cfg)
	if err != nil {
		return rep, err
	}
	perEmployee := max(1, cfg.SnapshotSessions/cfg.SnapshotEmployees)
	logf("snapshots: %d employees, %d sessions each, 10 fixes on each latest session (bulk, triggers off)",
		cfg.SnapshotEmployees, perEmployee)
	if err := bulk(ctx, admin, `
		INSERT INTO attendance_sessions (organization_id, employee_id, checkin_at, checkout_at, total_distance_km,
		                                 total_duration_seconds, distance_recalculation_status)
		SELECT e.organization_id, e.id, d.day + interval '9 hours', d.day + interval '17 hours',
		       round((random() * 80)::numeric, 3)::float8, 28800, 'done'
		  FROM employees e
		 CROSS JOIN LATERAL (SELECT date_trunc('day', now()) - j * interval '1 day' AS day
		                       FROM generate_series(1, $2::int) j) d
		 WHERE e.organization_id = $1`, org, perEmployee); err != nil {
		return rep, err
	}
	if err := bulk(ctx, admin, `
		INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude, accuracy)
		SELECT l.organization_id, l.id, l.checkin_at + i * interval '1 second', l.employee_id,
		       12.9 + i * 0.0001, 77.6, 5
		  FROM (SELECT DISTINCT ON (employee_id) * FROM attendance_sessions WHERE organization_id = $1
		         ORDER BY employee_id, checkin_at DESC) l
		 CROSS JOIN generate_series(1, 10) i`, org); err != nil {
		return rep, err
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM attendance_sessions WHERE organization_id = $1`, org).
		Scan(&rep.sessions); err != nil {
		return rep, err
	}
	logf("snapshots: building them by reconciliation (%d sessions)", rep.sessions)
	if rep.build, rep.buildRows, err = reconcile(ctx, admin, org); err != nil {
		return rep, err
	}
	var drift int64
	if rep.check, drift, err = reconcile(ctx, admin, org); err != nil {
		return rep, err
	}
	if drift != 0 {
		return rep, fmt.Errorf("snapshots: a second reconciliation repaired %d rows", drift)
	}
	if err := settle(ctx, admin); err != nil {
		return rep, err
	}
	if rep.small, err = adminReads(ctx, hc, cfg.ServerURL, token, logf); err != nil {
		return rep, err
	}

	more := max(0, int64(cfg.SnapshotPoints)-int64(cfg.SnapshotEmployees)*10)
	perSession := (more + rep.sessions - 1) / rep.sessions
	logf("snapshots: adding %d fixes to every session (bulk, triggers off)", perSession)
	if perSession > 0 {
		if err := bulk(ctx, admin, `
			INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude, accuracy)
			SELECT s.organization_id, s.id, s.checkin_at + interval '1 minute' + i * interval '10 seconds', s.employee_id,
			       12.9 + i * 0.0001, 77.6, 5
			  FROM attendance_sessions s CROSS JOIN generate_series(1, $2::int) i
			 WHERE s.organization_id = $1`, org, perSession); err != nil {
			return rep, err
		}
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM gps_locations WHERE organization_id = $1`, org).
		Scan(&rep.points); err != nil {
		return rep, err
	}
	logf("snapshots: %d fixes; repairing the last fixes by reconciliation", rep.points)
	if rep.repair, rep.repairRows, err = reconcile(ctx, admin, org); err != nil {
		return rep, err
	}
	if err := settle(ctx, admin); err != nil {
		return rep, err
	}
	if rep.large, err = adminReads(ctx, hc, cfg.ServerURL, token, logf); err != nil {
		return rep, err
	}

	if rep.withTrigger, rep.withoutTrigger, err = ingestWithAndWithout(ctx, cfg, admin, hc, probe, logf); err != nil {
		return rep, err
	}
	if rep.oneOrg, rep.manyOrgs, err = hotRows(ctx, cfg, admin, hc, logf); err != nil {
		return rep, err
	}
	return rep, nil
}

// newSnapshotOrg creates the organization, its employees and an admin, and returns the admin's token.
func newSnapshotOrg(ctx context.Context, pool *pgxpool.Pool, cfg Config) (uuid.UUID, string, error) {
	org, adminID := uuid.New(), uuid.New()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, s := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO organizations (id, name) VALUES ($1, 'Snapshot benchmark')`, []any{org}},
			{`INSERT INTO users (organization_id, id, email, role) VALUES ($1, $2, $3, 'ADMIN')`,
				[]any{org, adminID, "snap-admin-" + adminID.String() + "@example.test"}},
			{`INSERT INTO employees (organization_id, name, employee_code)
			  SELECT $1, 'Snapshot employee ' || i, 'SNAP' || lpad(i::text, 6, '0') FROM generate_series(1, $2::int) i`,
				[]any{org, cfg.SnapshotEmployees}},
		} {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return fmt.Errorf("snapshot fixtures: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return org, "", err
	}
	tok, err := cfg.mint(auth.MintOptions{Subject: adminID.String(), Role: auth.RoleAdmin, OrgID: org})
	return org, tok, err
}

// bulk runs one loading statement with triggers and foreign-key checks off, as a restore would.
func bulk(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("bulk load: %w", err)
		}
		return nil
	})
}

// settle does what autovacuum and the checkpointer would do after a bulk load, before a measurement.
func settle(ctx context.Context, pool *pgxpool.Pool) error {
	for _, sql := range []string{`VACUUM ANALYZE`, `CHECKPOINT`} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// reconcile repairs org's snapshots and returns how long it took and how many rows it wrote.
func reconcile(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID) (time.Duration, int64, error) {
	start := time.Now()
	var n int64
	err := pool.QueryRow(ctx, `SELECT coalesce(sum(rows_inserted + rows_updated + rows_deleted), 0)::bigint
		FROM reconcile_snapshot_tables(false, $1)`, org).Scan(&n)
	if err != nil {
		return 0, 0, fmt.Errorf("reconcile: %w", err)
	}
	return time.Since(start), n, nil
}

// adminReads calls each admin route snapshotRequests times, one at a time, after a few uncounted calls.
func adminReads(ctx context.Context, hc *http.Client, base, token string, logf func(string, ...any)) ([]routeLatency, error) {
	var out []routeLatency
	for _, route := range []string{"/admin/dashboard", "/admin/leaderboard", "/admin/sessions"} {
		var lat []time.Duration
		for i := range snapshotRequests + 5 {
			start := time.Now()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+route, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := hc.Do(req)
			if err != nil {
				return nil, err
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("GET %s: %w", route, httpError(resp.StatusCode, body))
			}
			if i >= 5 {
				lat = append(lat, time.Since(start))
			}
		}
		slices.Sort(lat)
		r := routeLatency{route: route, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99)}
		logf("snapshots: GET %s p50 %s p99 %s", route, r.p50, r.p99)
		out = append(out, r)
	}
	return out, nil
}

// ingestRuns is how many times each side of the ingest comparison runs (alternating); medians are compared.
const ingestRuns = 3

// ingestWithAndWithout runs phase B1 2 x ingestRuns times, alternately with the fixes' trigger of this release and
// with the one before the snapshots, and puts the trigger of this release back.
func ingestWithAndWithout(ctx context.Context, cfg Config, admin *pgxpool.Pool, hc *http.Client, probe cpuProbe,
	logf func(string, ...any)) (with, without []float64, err error) {
	var current string
	if err := admin.QueryRow(ctx, `SELECT pg_get_functiondef('app.gps_locations_after_insert()'::regprocedure)`).
		Scan(&current); err != nil {
		return nil, nil, err
	}
	defer func() {
		if _, rerr := admin.Exec(context.WithoutCancel(ctx), current); rerr != nil && err == nil {
			err = fmt.Errorf("restore the fixes' trigger: %w", rerr)
		}
	}()
	plain, err := plainFixesTrigger()
	if err != nil {
		return nil, nil, err
	}
	f, err := newFleet(ctx, admin, cfg.Employees, cfg.mint)
	if err != nil {
		return nil, nil, err
	}
	for i := range 2 * ingestRuns {
		on := i%2 == 0
		def := current
		if !on {
			def = plain
		}
		if _, err := admin.Exec(ctx, def); err != nil {
			return nil, nil, err
		}
		p := apiSingle(hc, cfg.ServerURL, f, cfg.Concurrency)
		p.path = map[bool]string{true: "B1 with the snapshot work", false: "B1 without it"}[on]
		r, _, err := measurePhase(ctx, p, cfg, admin, probe, logf)
		if err != nil {
			return nil, nil, err
		}
		if r.errors > r.ops/100 {
			return nil, nil, fmt.Errorf("%s: %d of %d failed, first: %s", p.path, r.errors, r.ops, r.firstErr)
		}
		if on {
			with = append(with, r.perSecond(r.rows))
		} else {
			without = append(without, r.perSecond(r.rows))
		}
	}
	return with, without, nil
}

// hotRows measures check-out/check-in cycles per second of Concurrency employees of one organization and
// of Concurrency organizations of one employee each.
func hotRows(ctx context.Context, cfg Config, admin *pgxpool.Pool, hc *http.Client, logf func(string, ...any)) (one, many float64, err error) {
	cycles := func(members []*member, label string) (float64, error) {
		p := phase{id: "HR", path: label, api: true, batch: 1, newWorker: func(w int) work {
			m := members[w]
			return func(ctx context.Context) (int, bool, error) {
				for _, action := range []string{"/attendance/check-out", "/attendance/check-in"} {
					st, body, err := post(ctx, hc, cfg.ServerURL+action, m.token, []byte(`{}`))
					if err != nil {
						return 0, false, err
					}
					if st/100 != 2 {
						return 0, false, httpError(st, body)
					}
				}
				return 1, false, nil
			}
		}}
		r := run(ctx, p, len(members), cfg.Phase)
		if r.errors > r.ops/100 {
			return 0, fmt.Errorf("%s: %d of %d failed, first: %s", label, r.errors, r.ops, r.firstErr)
		}
		logf("snapshots: %s: %.0f cycles/s", label, r.perSecond(r.rows))
		return r.perSecond(r.rows), nil
	}
	f, err := newFleet(ctx, admin, cfg.Concurrency, cfg.mint)
	if err != nil {
		return 0, 0, err
	}
	if one, err = cycles(f.members, "one organization"); err != nil {
		return 0, 0, err
	}
	var spread []*member
	for range cfg.Concurrency {
		f, err := newFleet(ctx, admin, 1, cfg.mint)
		if err != nil {
			return 0, 0, err
		}
		spread = append(spread, f.members[0])
	}
	many, err = cycles(spread, "one organization each")
	return one, many, err
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r snapshotReport) write(w io.Writer) {
	fmt.Fprintf(w, "## Snapshots\n\n%d employees, %d closed sessions; admin routes called %d times each, one at a time.\n\n",
		r.cfg.SnapshotEmployees, r.sessions, snapshotRequests)
	fmt.Fprintf(w, "| Route | p50 ms, %d fixes | p99 ms | p50 ms, %d fixes | p99 ms | p50 ratio | Target | |\n|---|---|---|---|---|---|---|---|\n",
		r.cfg.SnapshotEmployees*10, r.points)
	for i, s := range r.small {
		if i >= len(r.large) {
			break
		}
		l := r.large[i]
		ratio := float64(l.p50) / float64(max(s.p50, 1))
		fmt.Fprintf(w, "| `GET %s` | %s | %s | %s | %s | %.2f | ≤ %.1f | %s |\n", s.route, millis(s.p50), millis(s.p99),
			millis(l.p50), millis(l.p99), ratio, targetReadRatio, verdict(true, ratio <= targetReadRatio))
	}
	fmt.Fprintf(w, "\nReconciliation of the organization: full build %s (%d rows written), check without drift %s, "+
		"repair after the bulk-loaded fixes %s (%d rows).\n\n", r.build.Round(time.Millisecond), r.buildRows,
		r.check.Round(time.Millisecond), r.repair.Round(time.Millisecond), r.repairRows)
	with, without := median(r.withTrigger), median(r.withoutTrigger)
	cost := 1 - with/max(without, 1e-9)
	fmt.Fprintf(w, "| Single-fix ingest (B1) | rows/s per run | median |\n|---|---|---|\n")
	fmt.Fprintf(w, "| with the snapshot work | %s | %.0f |\n| without it (the trigger before 000014) | %s | %.0f |\n\n",
		floats(r.withTrigger), with, floats(r.withoutTrigger), without)
	fmt.Fprintf(w, "| Target | Measured | Goal | |\n|---|---|---|---|\n| cost of the snapshot work on single-fix ingest | %s | ≤ %s | %s |\n",
		percent(cost), percent(targetTriggerCost), verdict(true, cost <= targetTriggerCost))
	fmt.Fprintf(w, "| check-out + check-in cycles/s, %d employees of one organization vs of %d organizations | %.0f vs %.0f (%.2f) | ≈ 1 (no shared row) | |\n",
		r.cfg.Concurrency, r.cfg.Concurrency, r.oneOrg, r.manyOrgs, r.oneOrg/max(r.manyOrgs, 1e-9))
}

func floats(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.0f", x)
	}
	return s
}

func (r snapshotReport) failure() error { return r.err }
