package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pauseCron pauses the bench cluster's pg_cron jobs for an ingest section and returns what resumes
// them. Every minute app.measure_open_sessions measures each open session that received fixes since its
// last measure (up to 45 s of a core), and every 5 minutes app.reconcile_all checks the snapshots: during
// the GPS phases the first measures the benchmark's 200 sessions of thousands of fixes, which took up to
// three quarters of a core from whichever phase it fell in, raw or API, and made the ratios jump from run
// to run. Their cost is measured by the distance and snapshots sections. A job running when the pause
// starts is cancelled (the measure commits session by session, so nothing is lost but a session's
// measure, done again the next minute). Without pg_cron in the database this does nothing.
func pauseCron(ctx context.Context, admin *pgxpool.Pool, logf func(string, ...any)) (resume func(), err error) {
	var present bool
	if err := admin.QueryRow(ctx, `SELECT to_regclass('cron.job') IS NOT NULL`).Scan(&present); err != nil || !present {
		return func() {}, err
	}
	var paused []int64
	rows, err := admin.Query(ctx, `UPDATE cron.job SET active = false WHERE active RETURNING jobid`)
	if err != nil {
		return nil, fmt.Errorf("pause pg_cron: %w", err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		paused = append(paused, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pause pg_cron: %w", err)
	}
	resume = func() {
		if _, err := admin.Exec(context.WithoutCancel(ctx), `UPDATE cron.job SET active = true WHERE jobid = ANY($1)`,
			paused); err != nil {
			logf("could not resume pg_cron's jobs %v: %v", paused, err)
		}
	}
	// Jobs already running (pg_cron runs them on connections it names pg_cron): cancelled, and waited for.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var running int
		err := admin.QueryRow(ctx, `SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'pg_cron' AND state = 'active' AND pid <> pg_backend_pid()`).Scan(&running)
		if err != nil {
			resume()
			return nil, fmt.Errorf("cancel pg_cron's running jobs: %w", err)
		}
		if running == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	logf("pg_cron's %d jobs paused for the section", len(paused))
	return resume, nil
}
