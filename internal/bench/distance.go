package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
)

// The distance section: how long a check-out takes when it computes the distance of a session of 1,000,
// 10,000 and 50,000 fixes (the cleaning of sql/000019 runs in the check-out's transaction), and whether
// that grows at most linearly. For each size, distanceSessions employees each have an open session whose
// fixes (one a second: a walk with turns, drifting error and stops) are bulk-loaded and vacuumed; each
// checks out through the API, one at a time, and the check-out's latency is measured. app.session_distance is timed
// beside it in SQL on the same sessions (the computation alone, without HTTP and the check-out's writes).

// distanceSizes are the session sizes measured; distanceSessions the check-outs per size.
var distanceSizes = []int{1_000, 10_000, 50_000}

const distanceSessions = 5

// distanceSize is one size's measurement.
type distanceSize struct {
	fixes    int
	checkout []time.Duration // sorted
	compute  []time.Duration // sorted: app.session_distance alone
	km       float64         // the first session's distance
}

type distanceReport struct {
	sizes []distanceSize
	err   error
}

func runDistance(ctx context.Context, cfg Config, admin *pgxpool.Pool, hc *http.Client, logf func(string, ...any)) (distanceReport, error) {
	var rep distanceReport
	org := uuid.New()
	if _, err := admin.Exec(ctx, `INSERT INTO organizations (id, name) VALUES ($1, 'Distance benchmark')`, org); err != nil {
		return rep, fmt.Errorf("distance fixtures: %w", err)
	}
	for _, n := range distanceSizes {
		logf("distance: %d sessions of %d fixes", distanceSessions, n)
		size := distanceSize{fixes: n}
		type walker struct {
			token   string
			session uuid.UUID
		}
		var walkers []walker
		for i := range distanceSessions {
			tok, session, err := distanceSession(ctx, cfg, admin, org, n, i)
			if err != nil {
				return rep, err
			}
			walkers = append(walkers, walker{tok, session})
		}
		// What autovacuum would have done to fixes uploaded over hours: the first reader of a bulk load
		// would otherwise pay for setting every row's hint bits.
		if _, err := admin.Exec(ctx, `VACUUM ANALYZE gps_locations`); err != nil {
			return rep, fmt.Errorf("distance: vacuum: %w", err)
		}
		for i, wk := range walkers {
			start := time.Now()
			status, body, err := post(ctx, hc, cfg.ServerURL+"/attendance/check-out", wk.token, nil)
			took := time.Since(start)
			if err != nil {
				return rep, fmt.Errorf("distance: check-out: %w", err)
			}
			if status != http.StatusOK {
				return rep, fmt.Errorf("distance: check-out: %w", httpError(status, body))
			}
			size.checkout = append(size.checkout, took)
			var km float64
			start = time.Now()
			if err := admin.QueryRow(ctx, `SELECT distance_m / 1000 FROM app.session_distance($1, $2)`, org, wk.session).
				Scan(&km); err != nil {
				return rep, fmt.Errorf("distance: app.session_distance: %w", err)
			}
			size.compute = append(size.compute, time.Since(start))
			if i == 0 {
				size.km = km
			}
		}
		slices.Sort(size.checkout)
		slices.Sort(size.compute)
		rep.sizes = append(rep.sizes, size)
	}
	return rep, nil
}

// distanceSession creates an employee of org with a session checked in before n fixes, one a second, and
// bulk-loads them (triggers off, as a restore would: the check-out computes the distance anyway). The
// track is a walk at 1.2 m/s with a right-angle turn every 100 s, a 2-minute stop every 20 minutes, and an
// error drifting over minutes plus a few metres of noise; reported accuracy 10-30 m. It returns the
// employee's token and the session.
func distanceSession(ctx context.Context, cfg Config, pool *pgxpool.Pool, org uuid.UUID, n, i int) (string, uuid.UUID, error) {
	user, emp, session := uuid.New(), uuid.New(), uuid.New()
	checkin := time.Now().Add(-time.Duration(n+60) * time.Second).Truncate(time.Second)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, s := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO users (organization_id, id, email, role) VALUES ($1, $2, $3, 'EMPLOYEE')`,
				[]any{org, user, "distance-" + user.String() + "@example.test"}},
			{`INSERT INTO employees (organization_id, id, user_id, name) VALUES ($1, $2, $3, $4)`,
				[]any{org, emp, user, fmt.Sprintf("Walker %d-%d", n, i)}},
			{`INSERT INTO attendance_sessions (organization_id, id, employee_id, checkin_at) VALUES ($1, $2, $3, $4)`,
				[]any{org, session, emp, checkin}},
			{`SET LOCAL session_replication_role = replica`, nil},
			// Legs of 100 s on a grid (east, north, east, south, ...), standing still for the last 120 s of
			// every 1200; position in metres from the start, then to degrees.
			{`INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude, accuracy)
			  SELECT $1, $2, $3::timestamptz + interval '30 seconds' + k * interval '1 second', $4,
			         48.1 + (w.north + 25 * sin(k / 180.0) + 3 * sin(k * 1.7)) / 111320.0,
			         11.5 + (w.east + 25 * cos(k / 240.0) + 3 * cos(k * 2.3)) / (111320.0 * cos(radians(48.1))),
			         10 + 20 * (0.5 + 0.5 * sin(k / 97.0))
			    FROM generate_series(0, $5::int - 1) AS k,
			         LATERAL (SELECT least(k % 1200, 1080) + 1080 * (k / 1200) AS moved) m,
			         LATERAL (SELECT 1.2 * (m.moved / 200 * 100 + least(m.moved % 200, 100)) AS east,
			                         1.2 * (CASE WHEN (m.moved / 200) % 2 = 0 THEN greatest(m.moved % 200 - 100, 0)
			                                     ELSE 100 - greatest(m.moved % 200 - 100, 0) END) AS north) w`,
				[]any{org, session, checkin, emp, n}},
		} {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return fmt.Errorf("distance fixtures: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return "", session, err
	}
	tok, err := cfg.mint(auth.MintOptions{Subject: user.String(), Role: auth.RoleEmployee, OrgID: org,
		EmployeeID: uuid.NullUUID{UUID: emp, Valid: true}})
	return tok, session, err
}

// maxPerFixGrowth is how much more a fix may cost in the largest session than in the one before it before
// the growth counts as worse than linear (the smallest carries the check-out's fixed cost, HTTP and its
// writes, so the two largest, where the computation dominates, are compared).
const maxPerFixGrowth = 1.5

func (r distanceReport) write(w io.Writer) {
	fmt.Fprintf(w, "### Distance: check-out latency by session size\n\n")
	fmt.Fprintf(w, "%d check-outs per size through `POST /attendance/check-out`, one at a time, each computing its "+
		"session's distance in its transaction; `app.session_distance` alone timed in SQL on the same sessions.\n\n",
		distanceSessions)
	fmt.Fprintf(w, "| fixes | check-out p50 ms | check-out max ms | app.session_distance p50 ms | µs a fix (p50) | km (first session) |\n")
	fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.sizes {
		p50 := percentile(s.checkout, 0.5)
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.1f | %.3f |\n", s.fixes, millis(p50), millis(s.checkout[len(s.checkout)-1]),
			millis(percentile(s.compute, 0.5)), float64(p50.Microseconds())/float64(s.fixes), s.km)
	}
	if growth, ok := r.growth(); ok {
		verdict := "PASS"
		if growth > maxPerFixGrowth {
			verdict = "MISS"
		}
		fmt.Fprintf(w, "\n| Target | Measured | Goal | Result |\n|---|---:|---:|---|\n")
		fmt.Fprintf(w, "| check-out µs a fix at %d ÷ at %d (grows at most linearly) | %.2f | ≤ %.1f | %s |\n",
			r.sizes[len(r.sizes)-1].fixes, r.sizes[len(r.sizes)-2].fixes, growth, maxPerFixGrowth, verdict)
	}
}

// growth is the per-fix check-out cost of the largest size over the next largest's.
func (r distanceReport) growth() (float64, bool) {
	if len(r.sizes) < 2 {
		return 0, false
	}
	per := func(s distanceSize) float64 { return float64(percentile(s.checkout, 0.5)) / float64(s.fixes) }
	return per(r.sizes[len(r.sizes)-1]) / per(r.sizes[len(r.sizes)-2]), true
}

func (r distanceReport) failure() error { return r.err }
