package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The volume section (issue 14): does single-fix ingest slow down as gps_locations grows? Phase B1
// (POST /locations, one fix per request) and phase A1 (the raw single-row insert) run on an empty table,
// then VolumePoints fixes are bulk-loaded (triggers off, as a restore would) into closed sessions of the
// same employees, a history of up to 2,500 fixes a day at 10 s intervals, and the table is vacuumed and
// checkpointed (what autovacuum and the checkpointer would have done); then the same phases again. B1
// runs twice at each volume, A1 once, so that the raw insert tells the machine's drift from the table's.
// The section empties gps_locations first (it runs last: the other sections' fixes are no longer needed).

// targetVolumeRatio is the smallest share of its empty-table rate single-fix ingest keeps at VolumePoints.
const targetVolumeRatio = 0.8

// fixesPerHistoricDay is how many fixes each bulk-loaded session holds at most (10 s apart: 7 hours).
const fixesPerHistoricDay = 2500

type volumeReport struct {
	cfg         Config
	empty, full []measured // the phases at each volume
	stored      int64      // gps_locations' rows at the second volume
	sessions    int64      // closed sessions the load created
	loadSeconds float64
	tableBytes  int64 // gps_locations with its index at the second volume
	err         error
}

func runVolume(ctx context.Context, cfg Config, admin *pgxpool.Pool, hc *http.Client, probe cpuProbe,
	logf func(string, ...any)) (volumeReport, error) {
	rep := volumeReport{cfg: cfg}
	if _, err := admin.Exec(ctx, `TRUNCATE gps_locations`); err != nil {
		return rep, fmt.Errorf("volume: empty gps_locations: %w", err)
	}
	logf("volume: 1 organization, %d employees with open sessions and tokens", cfg.Employees)
	f, err := newFleet(ctx, admin, cfg.Employees, cfg.mint)
	if err != nil {
		return rep, err
	}
	resume, err := pauseCron(ctx, admin, logf)
	if err != nil {
		return rep, err
	}
	defer resume()
	if err := settle(ctx, admin); err != nil {
		return rep, err
	}
	phases := func(label string) ([]measured, error) {
		var out []measured
		for _, id := range []string{"B1", "A1", "B1"} {
			p, done, err := preparePhase(ctx, id, cfg, f, hc)
			if err != nil {
				return nil, err
			}
			p.path += ", " + label
			r, _, err := measurePhase(ctx, p, cfg, admin, probe, logf)
			done()
			if err != nil {
				return nil, err
			}
			if r.ops == 0 || r.errors > r.ops/100 {
				return nil, fmt.Errorf("volume: %s: %d of %d failed, first: %s", p.path, r.errors, r.ops, r.firstErr)
			}
			out = append(out, measured{p, r})
		}
		return out, nil
	}
	if rep.empty, err = phases("empty table"); err != nil {
		return rep, err
	}

	perEmployee := int64(cfg.VolumePoints+cfg.Employees-1) / int64(cfg.Employees)
	days := (perEmployee + fixesPerHistoricDay - 1) / fixesPerHistoricDay
	perDay := (perEmployee + days - 1) / days
	logf("volume: loading %d closed sessions an employee with %d fixes each (bulk, triggers off)", days, perDay)
	start := time.Now()
	if err := bulk(ctx, admin, `
		INSERT INTO attendance_sessions (organization_id, employee_id, checkin_at, checkout_at, total_distance_km,
		                                 total_duration_seconds, distance_recalculation_status)
		SELECT $1, e, d.day + interval '9 hours', d.day + interval '17 hours', 0, 28800, 'done'
		  FROM unnest($2::uuid[]) AS e
		 CROSS JOIN LATERAL (SELECT date_trunc('day', now()) - j * interval '1 day' AS day
		                       FROM generate_series(1, $3::int) j) d`, f.orgID, f.employeeIDs(), days); err != nil {
		return rep, err
	}
	if err := bulk(ctx, admin, `
		INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude, accuracy,
		                           sequence_number)
		SELECT s.organization_id, s.id, s.checkin_at + i * interval '10 seconds', s.employee_id,
		       12.9 + i * 0.00001, 77.6, 5, i
		  FROM attendance_sessions s CROSS JOIN generate_series(1, $2::int) i
		 WHERE s.organization_id = $1 AND s.checkout_at IS NOT NULL`, f.orgID, perDay); err != nil {
		return rep, err
	}
	if err := settle(ctx, admin); err != nil {
		return rep, err
	}
	rep.loadSeconds = time.Since(start).Seconds()
	if err := admin.QueryRow(ctx, `SELECT count(*), pg_total_relation_size('gps_locations') FROM gps_locations`).
		Scan(&rep.stored, &rep.tableBytes); err != nil {
		return rep, err
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM attendance_sessions WHERE organization_id = $1 AND checkout_at IS NOT NULL`,
		f.orgID).Scan(&rep.sessions); err != nil {
		return rep, err
	}
	logf("volume: %d fixes stored (%.0f MB with the index) in %.0f s", rep.stored, float64(rep.tableBytes)/1e6, rep.loadSeconds)
	if rep.full, err = phases(fmt.Sprintf("%d fixes stored", rep.stored)); err != nil {
		return rep, err
	}
	return rep, nil
}

// medianRate is the median rows/s of the phases of id.
func medianRate(ps []measured, id string) float64 {
	var xs []float64
	for _, p := range ps {
		if p.id == id {
			xs = append(xs, p.perSecond(p.rows))
		}
	}
	return median(xs)
}

func (r volumeReport) write(w io.Writer) {
	fmt.Fprintf(w, "## Ingest at volume\n\n%d workers, %d employees with open sessions; %s per phase after a %s warm-up; "+
		"%d fixes bulk-loaded into %d closed sessions of the same employees in %.0f s (gps_locations %.0f MB with its index), "+
		"then vacuumed and checkpointed. pg_cron's jobs are paused.\n\n",
		r.cfg.Concurrency, r.cfg.Employees, r.cfg.Phase, r.cfg.Warmup, r.stored, r.sessions, r.loadSeconds,
		float64(r.tableBytes)/1e6)
	fmt.Fprintln(w, "| Phase | Path | Rows/s | p50 ms | p99 ms | CPU server | CPU Postgres | CPU other |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	all := append(append([]measured{}, r.empty...), r.full...)
	for _, p := range all {
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s | %s | %s |\n", p.id, p.path, p.perSecond(p.rows),
			millis(percentile(p.latencies, 0.50)), millis(percentile(p.latencies, 0.99)),
			core(p.cpu.server), core(p.cpu.dbs), core(p.cpu.other))
	}
	fmt.Fprintln(w)
	if noisy := noisyPhases(all); len(noisy) > 0 {
		fmt.Fprintf(w, "**Noisy run:** other processes used more than %.0f%% of a core during %d of the %d phases; "+
			"rerun on a quiet machine before quoting these figures.\n\n", noisyOther*100, len(noisy), len(all))
	}
	b1 := medianRate(r.full, "B1") / max(medianRate(r.empty, "B1"), 1e-9)
	a1 := medianRate(r.full, "A1") / max(medianRate(r.empty, "A1"), 1e-9)
	fmt.Fprintln(w, "| Target | Measured | Goal | Result |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	fmt.Fprintf(w, "| `POST /locations` rows/s at %d fixes ÷ on an empty table (medians of 2) | %.2f | ≥ %.1f | %s |\n",
		r.stored, b1, targetVolumeRatio, verdict(true, b1 >= targetVolumeRatio))
	fmt.Fprintf(w, "| the raw single-row insert, the same (1 run each: the machine's drift) | %.2f | | |\n", a1)
	fmt.Fprintf(w, "| the API's share of the raw rate, at %d fixes ÷ on an empty table | %.2f | | |\n",
		r.stored, b1/max(a1, 1e-9))
}

func (r volumeReport) failure() error { return r.err }

// employeeIDs lists the fleet's employees.
func (f *fleet) employeeIDs() []string {
	out := make([]string, len(f.members))
	for i, m := range f.members {
		out[i] = m.employeeID.String()
	}
	return out
}
