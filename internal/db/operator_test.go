package db_test

import (
	"context"
	"testing"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// operatorMetrics reads app.operator_metrics as the worker role, as /metrics does: name/label -> value.
func operatorMetrics(t *testing.T, pool db.DBTX) map[string]float64 {
	t.Helper()
	rows, err := db.New().OperatorMetrics(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, r := range rows {
		out[r.Name+"/"+r.Label] = r.Value
	}
	return out
}

// The drift the last reconciliation repaired, per snapshot table, in a database of its own (the shared
// test database has other tests' runs, and pg_cron's every five minutes).
func TestOperatorMetrics_TheLastReconciliationsRepairs(t *testing.T) {
	t.Parallel()
	_, pool := testfactory.MigratedDatabase(t, 2)
	org := testfactory.NewOrgIn(t, pool)
	testfactory.NewEmployeeIn(t, pool, org, "Drifting")
	if _, err := pool.Exec(t.Context(), `UPDATE employee_metrics_snapshot SET total_expenses = 1000 WHERE organization_id = $1`,
		org.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `CALL app.reconcile_all()`); err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	if err := db.InTx(t.Context(), pool, db.Claims{}, db.TxOptions{Role: db.WorkerRole, ReadOnly: true}, func(tx db.DBTX) error {
		got = operatorMetrics(t, tx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got["snapshot_drift_rows/employee_metrics_snapshot"] != 1 || got["snapshot_drift_rows/employee_last_state"] != 0 ||
		got["reconcile_errors/"] != 0 || got["reconcile_last_run/"] <= 0 {
		t.Fatalf("operator metrics %v, want one repaired employee_metrics_snapshot row", got)
	}
}

// A failed pg_cron run counts for its job.
func TestOperatorMetrics_CronFailuresOfTheLastDay(t *testing.T) {
	t.Parallel()
	owner := testfactory.Pool(t)
	var runID int64
	if err := owner.QueryRow(t.Context(), `INSERT INTO cron.job_run_details (jobid, database, username, command, status,
		return_message, start_time, end_time)
		SELECT jobid, current_database(), 'fieldtrack', 'SELECT 1', 'failed', 'test', now(), now()
		  FROM cron.job WHERE jobname = 'fieldtrack-prune-events' RETURNING runid`).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = owner.Exec(context.Background(), `DELETE FROM cron.job_run_details WHERE runid = $1`, runID)
	})
	var got map[string]float64
	if err := db.InTx(t.Context(), owner, db.Claims{}, db.TxOptions{Role: db.WorkerRole, ReadOnly: true}, func(tx db.DBTX) error {
		got = operatorMetrics(t, tx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got["cron_failures_24h/fieldtrack-prune-events"] < 1 {
		t.Fatalf("operator metrics %v, want the failed run of fieldtrack-prune-events", got)
	}
	if _, ok := got["cron_failures_24h/fieldtrack-reconcile-snapshots"]; !ok {
		t.Fatalf("operator metrics %v lack the other jobs", got)
	}
}
