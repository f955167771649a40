package db_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// snapshotWorld is two organizations whose employees a random walk of writes goes through.
type snapshotWorld struct {
	t    *testing.T
	rnd  *rand.Rand
	orgs []testfactory.Org
	emps []testfactory.Employee
	// days already used by an employee's imported sessions (they must not overlap, as real ones do not)
	used map[uuid.UUID]map[int]bool
}

// drift is what the dry run reports for org: table -> rows it would insert, update and delete.
func (w *snapshotWorld) drift(org uuid.UUID) map[string]string {
	w.t.Helper()
	rows, err := testfactory.Pool(w.t).Query(w.t.Context(),
		`SELECT table_name, rows_inserted, rows_updated, rows_deleted FROM reconcile_snapshot_tables(true, $1)`, org)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var table string
		var ins, upd, del int64
		if err := rows.Scan(&table, &ins, &upd, &del); err != nil {
			w.t.Fatal(err)
		}
		if ins+upd+del > 0 {
			out[table] = fmt.Sprintf("+%d ~%d -%d", ins, upd, del)
		}
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	return out
}

// diff shows, for a table that drifted, the rows that differ (expected first, then stored).
func (w *snapshotWorld) diff(org uuid.UUID, table string) string {
	var out []string
	for _, q := range []string{
		`SELECT to_jsonb(x) - '{updated_at,last_upload_at,total_hours}'::text[] FROM app.expected_` + table + `($1) x
		 EXCEPT SELECT to_jsonb(x) - '{updated_at,last_upload_at,total_hours}'::text[] FROM ` + table + ` x WHERE organization_id = $1`,
		`SELECT to_jsonb(x) - '{updated_at,last_upload_at,total_hours}'::text[] FROM ` + table + ` x WHERE organization_id = $1
		 EXCEPT SELECT to_jsonb(x) - '{updated_at,last_upload_at,total_hours}'::text[] FROM app.expected_` + table + `($1) x`,
	} {
		rows, _ := testfactory.Pool(w.t).Query(w.t.Context(), q, org)
		js, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err.Error()
		}
		out = append(out, strings.Join(js, "\n    "))
	}
	return "expected:\n    " + out[0] + "\n  stored:\n    " + out[1]
}

// exec runs sql as the owner (a DBA, an import); refusals (an import for a deactivated employee) are fine.
func (w *snapshotWorld) exec(sql string, args ...any) {
	w.t.Helper()
	if _, err := testfactory.Pool(w.t).Exec(w.t.Context(), sql, args...); err != nil && !strings.Contains(err.Error(), "PT40") {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

// as runs sql in a request transaction of claims c; refusals the walk may provoke (a deactivated
// employee's work) are fine.
func (w *snapshotWorld) as(c db.Claims, sql string, args ...any) {
	w.t.Helper()
	err := db.InTx(w.t.Context(), testfactory.Pool(w.t), c, db.TxOptions{}, func(tx db.DBTX) error {
		_, err := tx.Exec(w.t.Context(), sql, args...)
		return err
	})
	if err != nil && !strings.Contains(err.Error(), "PT40") {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

func (w *snapshotWorld) one(sql string, args ...any) (id uuid.UUID, ok bool) {
	w.t.Helper()
	err := testfactory.Pool(w.t).QueryRow(w.t.Context(), sql, args...).Scan(&id)
	if err == pgx.ErrNoRows {
		return uuid.Nil, false
	}
	if err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
	return id, true
}

// step makes one random write and says what it did.
func (w *snapshotWorld) step() string {
	e := w.emps[w.rnd.IntN(len(w.emps))]
	now := time.Now()
	switch k := w.rnd.IntN(13); k {
	case 0, 1: // check in or out through the API role
		if open, ok := w.one(`SELECT id FROM attendance_sessions WHERE organization_id = $1 AND employee_id = $2 AND checkout_at IS NULL`, e.OrgID, e.ID); ok {
			w.as(testfactory.EmployeeClaims(e), `UPDATE attendance_sessions SET checkout_at = now() WHERE organization_id = $1 AND id = $2`, e.OrgID, open)
			return "check-out"
		}
		w.as(testfactory.EmployeeClaims(e), `INSERT INTO attendance_sessions (organization_id, employee_id) VALUES ($1, $2)`, e.OrgID, e.ID)
		return "check-in"
	case 2: // an imported session of an earlier day
		day := 1 + w.rnd.IntN(12)
		if w.used[e.ID] == nil {
			w.used[e.ID] = map[int]bool{}
		}
		if w.used[e.ID][day] {
			return "nothing (day used)"
		}
		w.used[e.ID][day] = true
		in := now.Add(-time.Duration(day)*24*time.Hour + time.Duration(w.rnd.IntN(600))*time.Minute)
		w.exec(`INSERT INTO attendance_sessions (organization_id, employee_id, checkin_at, checkout_at) VALUES ($1, $2, $3, $4)`,
			e.OrgID, e.ID, in, in.Add(time.Duration(30+w.rnd.IntN(500))*time.Minute))
		return fmt.Sprintf("imported session %d days ago", day)
	case 3, 4, 5: // fixes for one of its sessions, late or not, some again
		var id uuid.UUID
		var in time.Time
		var out *time.Time
		err := testfactory.Pool(w.t).QueryRow(w.t.Context(), `SELECT id, checkin_at, checkout_at FROM attendance_sessions
			WHERE organization_id = $1 AND employee_id = $2 ORDER BY random() LIMIT 1`, e.OrgID, e.ID).Scan(&id, &in, &out)
		if err == pgx.ErrNoRows {
			return "nothing (no session)"
		}
		if err != nil {
			w.t.Fatal(err)
		}
		end := now
		if out != nil {
			end = *out
		}
		n := 1 + w.rnd.IntN(6)
		lat, lon, acc, at, seq := make([]float64, n), make([]float64, n), make([]float64, n), make([]time.Time, n), make([]int32, n)
		for i := range n {
			lat[i], lon[i], acc[i] = 12.9+w.rnd.Float64()*0.05, 77.5+w.rnd.Float64()*0.05, 5+w.rnd.Float64()*10
			// whole seconds, so a repeated time is a repeated fix
			at[i] = in.Add(time.Duration(w.rnd.Int64N(int64(end.Sub(in)/time.Second)+1)) * time.Second).Truncate(time.Second)
			if at[i].Before(in) {
				at[i] = in.Add(time.Second).Truncate(time.Second)
			}
			if at[i].After(end) {
				at[i] = end.Truncate(time.Second)
			}
		}
		w.as(testfactory.EmployeeClaims(e), `SELECT app.record_locations($1, $2, $3, $4, $5, $6, $7)`, e.OrgID, id, lat, lon, acc, at, seq)
		return fmt.Sprintf("%d fixes (closed %v)", n, out != nil)
	case 6: // a recalculation
		if id, ok := w.one(`SELECT id FROM attendance_sessions WHERE organization_id = $1 AND employee_id = $2 ORDER BY random() LIMIT 1`, e.OrgID, e.ID); ok {
			w.exec(`SELECT app.recalculate_session($1, $2)`, e.OrgID, id)
			return "recalculation"
		}
		return "nothing (no session)"
	case 7: // an expense, filed today by the employee or imported on an earlier day
		if w.rnd.IntN(2) == 0 {
			w.as(testfactory.EmployeeClaims(e), `SELECT app.file_expense($1, $2, $3, 'Fuel and tolls', NULL, NULL, NULL, NULL)`,
				e.OrgID, e.ID, float64(1+w.rnd.IntN(50000))/100)
			return "expense filed"
		}
		w.exec(`INSERT INTO expenses (organization_id, employee_id, amount, description, submitted_at) VALUES ($1, $2, $3, 'Hotel night', $4)`,
			e.OrgID, e.ID, float64(1+w.rnd.IntN(50000))/100, now.Add(-time.Duration(w.rnd.IntN(12*24))*time.Hour))
		return "expense imported"
	case 8: // a review
		if id, ok := w.one(`SELECT id FROM expenses WHERE organization_id = $1 AND employee_id = $2 AND status = 'PENDING' ORDER BY random() LIMIT 1`, e.OrgID, e.ID); ok {
			org := w.orgOf(e)
			if w.rnd.IntN(2) == 0 {
				w.as(testfactory.AdminClaims(org), `UPDATE expenses SET status = 'APPROVED', reviewed_at = now() WHERE organization_id = $1 AND id = $2`, e.OrgID, id)
				return "approval"
			}
			w.as(testfactory.AdminClaims(org), `UPDATE expenses SET status = 'REJECTED', rejection_comment = 'No receipt', reviewed_at = now() WHERE organization_id = $1 AND id = $2`, e.OrgID, id)
			return "rejection"
		}
		return "nothing (no pending expense)"
	case 9: // deactivation (closing the open session) or re-activation
		w.exec(`UPDATE employees SET is_active = NOT is_active WHERE organization_id = $1 AND id = $2`, e.OrgID, e.ID)
		return "(de)activation"
	case 10: // the open sessions' distance so far
		w.exec(`CALL app.measure_open_sessions()`)
		return "open sessions measured"
	case 11: // the organization moves time zone
		tz := []string{"UTC", "Asia/Kolkata", "America/Los_Angeles", "Pacific/Kiritimati"}[w.rnd.IntN(4)]
		w.exec(`UPDATE organizations SET time_zone = $2 WHERE id = $1`, e.OrgID, tz)
		return "time zone " + tz
	default: // a DBA deletes a session or an expense
		if w.rnd.IntN(2) == 0 {
			w.exec(`DELETE FROM attendance_sessions WHERE organization_id = $1 AND id = (SELECT id FROM attendance_sessions
				WHERE organization_id = $1 AND employee_id = $2 AND checkout_at IS NOT NULL ORDER BY random() LIMIT 1)`, e.OrgID, e.ID)
			return "session deleted"
		}
		w.exec(`DELETE FROM expenses WHERE organization_id = $1 AND id = (SELECT id FROM expenses
			WHERE organization_id = $1 AND employee_id = $2 ORDER BY random() LIMIT 1)`, e.OrgID, e.ID)
		return "expense deleted"
	}
}

func (w *snapshotWorld) orgOf(e testfactory.Employee) testfactory.Org {
	for _, o := range w.orgs {
		if o.ID == e.OrgID {
			return o
		}
	}
	w.t.Fatalf("no organization %s", e.OrgID)
	return testfactory.Org{}
}

// Random interleavings of every kind of write, across employees of two organizations: after each, every
// snapshot equals what its definition computes from the sources (the dry run finds nothing).
// SNAPSHOT_SEED replays a walk; SNAPSHOT_STEPS makes it longer.
func TestSnapshots_StayExactUnderRandomWrites(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("SNAPSHOT_SEED"), 10, 64); err == nil {
		seed = s
	}
	steps := 250
	if n, err := strconv.Atoi(os.Getenv("SNAPSHOT_STEPS")); err == nil && n > 0 {
		steps = n
	}
	t.Logf("SNAPSHOT_SEED=%d", seed)
	w := &snapshotWorld{t: t, rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)), used: map[uuid.UUID]map[int]bool{}}
	for range 2 {
		org := testfactory.NewOrg(t)
		w.orgs = append(w.orgs, org)
		for i := range 3 {
			w.emps = append(w.emps, testfactory.NewEmployee(t, org, fmt.Sprintf("Walker %d", i)))
		}
	}
	var done []string
	for i := range steps {
		did := w.step()
		done = append(done, did)
		for _, org := range w.orgs {
			if d := w.drift(org.ID); len(d) > 0 {
				for table := range d {
					t.Logf("%s: %s", table, w.diff(org.ID, table))
				}
				t.Fatalf("step %d (%s) left drift %v (SNAPSHOT_SEED=%d); the steps: %s", i, did, d, seed,
					strings.Join(done, ", "))
			}
		}
	}
}

// pauseReconcileJob keeps pg_cron's reconciliation of every organization (every 5 minutes) out of a
// test that corrupts snapshots on purpose and counts the repairs: a run falling in between repairs them
// under it. It waits for a run already under way to end, and resumes the job when the test ends.
func pauseReconcileJob(t *testing.T) {
	t.Helper()
	p := testfactory.Pool(t)
	const alter = `SELECT cron.alter_job(jobid, active := $1) FROM cron.job WHERE jobname = 'fieldtrack-reconcile-snapshots'`
	if _, err := p.Exec(t.Context(), alter, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := p.Exec(context.Background(), alter, true); err != nil {
			t.Errorf("resuming the reconcile job: %v", err)
		}
	})
	testfactory.Eventually(t, time.Minute, "a pg_cron reconcile run under way to end", func() (bool, error) {
		var running bool
		err := p.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE 'CALL app.reconcile_all()%')`).Scan(&running)
		return !running, err
	})
}

// Corrupted snapshot rows: the dry run reports them without repairing; the next run repairs them, and
// a run after that finds nothing.
func TestSnapshots_ReconciliationReportsAndRepairsCorruption(t *testing.T) {
	t.Parallel()
	pauseReconcileJob(t)
	org := testfactory.NewOrg(t)
	e := testfactory.NewEmployee(t, org, "Corrupted")
	other := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Bystander")
	now := time.Now()
	testfactory.ClosedSession(t, e, now.Add(-50*time.Hour), now.Add(-45*time.Hour))
	testfactory.ClosedSession(t, other, now.Add(-50*time.Hour), now.Add(-45*time.Hour))
	testfactory.OpenSession(t, e, now.Add(-time.Hour))
	w := &snapshotWorld{t: t}
	w.exec(`INSERT INTO expenses (organization_id, employee_id, amount, description) VALUES ($1, $2, 12.5, 'Lunch')`, org.ID, e.ID)
	if d := w.drift(org.ID); len(d) > 0 {
		t.Fatalf("drift before the corruption: %v", d)
	}
	w.exec(`UPDATE employee_daily_metrics SET sessions = 7 WHERE organization_id = $1`, org.ID)
	w.exec(`UPDATE employee_last_state SET is_checked_in = false WHERE organization_id = $1`, org.ID)
	w.exec(`DELETE FROM pending_expenses WHERE organization_id = $1`, org.ID)
	w.exec(`DELETE FROM employee_latest_sessions WHERE organization_id = $1`, org.ID)
	w.exec(`UPDATE employee_metrics_snapshot SET total_expenses = 1000 WHERE organization_id = $1`, org.ID)
	w.exec(`INSERT INTO employee_daily_metrics (organization_id, employee_id, date, sessions) VALUES ($1, $2, '2001-01-01', 3)`, org.ID, e.ID)

	// (A day may be split in two by midnight: the daily rows' count is not fixed.)
	want := map[string]string{"employee_last_state": "+0 ~1 -0", "pending_expenses": "+1 ~0 -0",
		"employee_latest_sessions": "+1 ~0 -0", "employee_metrics_snapshot": "+0 ~1 -0"}
	first := w.drift(org.ID)
	for table, report := range want {
		if first[table] != report {
			t.Errorf("dry run of %s: %q, want %q", table, first[table], report)
		}
	}
	if d := first["employee_daily_metrics"]; !strings.HasPrefix(d, "+0 ~") || !strings.HasSuffix(d, " -1") || d == "+0 ~0 -1" {
		t.Errorf("dry run of employee_daily_metrics: %q, want updates and one deletion", d)
	}
	if again := w.drift(org.ID); fmt.Sprint(again) != fmt.Sprint(first) { // the dry run repaired nothing
		t.Fatalf("a second dry run: %v, the first: %v", again, first)
	}
	want["employee_daily_metrics"] = first["employee_daily_metrics"]
	if d := w.drift(other.OrgID); len(d) > 0 {
		t.Fatalf("the other organization drifted: %v", d)
	}
	// The repair, by hand for all organizations: the report counts what it did.
	rows, err := testfactory.Pool(t).Query(t.Context(), `SELECT table_name, rows_inserted + rows_updated + rows_deleted,
		organizations_drifted FROM reconcile_snapshot_tables()`)
	if err != nil {
		t.Fatal(err)
	}
	repaired := map[string]int64{}
	for rows.Next() {
		var table string
		var n, orgs int64
		if err := rows.Scan(&table, &n, &orgs); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			repaired[table] = orgs
		}
	}
	for table := range want {
		if repaired[table] < 1 {
			t.Errorf("%s: not repaired (%v)", table, repaired)
		}
	}
	if d := w.drift(org.ID); len(d) > 0 {
		t.Fatalf("drift after the repair: %v", d)
	}
	var active bool
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT is_checked_in FROM employee_last_state
		WHERE organization_id = $1 AND employee_id = $2`, org.ID, e.ID).Scan(&active); err != nil || !active {
		t.Fatalf("the repaired state: checked in %v (%v)", active, err)
	}
	// The job's procedure: it commits per organization and logs a summary.
	w.exec(`CALL app.reconcile_all()`)
	var runs int
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT count(*) FROM app.reconcile_runs WHERE organization_id IS NULL
		AND run_at > now() - interval '1 minute'`).Scan(&runs); err != nil || runs == 0 {
		t.Fatalf("reconcile_all logged %d summary rows (%v)", runs, err)
	}
}

// Late fixes (which recalculate their closed session), check-ins and check-outs, and recalculations of
// one employee at once: every path locks the session before the employee's snapshot rows, so none
// deadlocks, and the snapshots stay exact.
func TestSnapshots_ConcurrentWritersOfOneEmployeeDoNotDeadlock(t *testing.T) {
	t.Parallel()
	org := testfactory.NewOrg(t)
	e := testfactory.NewEmployee(t, org, "Busy")
	pool := testfactory.Pool(t)
	in := time.Now().Add(-10 * time.Hour).Truncate(time.Second)
	closed := testfactory.ClosedSession(t, e, in, in.Add(8*time.Hour))
	// Enough fixes that a recalculation takes a while (the window a lock-order inversion needs).
	if _, err := pool.Exec(t.Context(), `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id,
		latitude, longitude, accuracy) SELECT $1, $2, $3::timestamptz + i * interval '5 seconds', $4, 12.9 + i * 0.00001, 77.6, 5
		FROM generate_series(1, 3000) i`, org.ID, closed, in, e.ID); err != nil {
		t.Fatal(err)
	}
	w := &snapshotWorld{t: t}
	errs := make(chan error, 3)
	run := func(n int, do func(i int) error) {
		go func() {
			for i := range n {
				if err := do(i); err != nil {
					errs <- fmt.Errorf("step %d: %w", i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	tx := func(c db.Claims, sql string, args ...any) error {
		return db.InTx(t.Context(), pool, c, db.TxOptions{}, func(tx db.DBTX) error {
			_, err := tx.Exec(t.Context(), sql, args...)
			return err
		})
	}
	run(20, func(i int) error { // late fixes, each recalculating the closed session
		at := in.Add(time.Duration(3000*5+i+1) * time.Second)
		return tx(testfactory.EmployeeClaims(e), `SELECT app.record_locations($1, $2, $3, $4, $5, $6, $7)`, org.ID, closed,
			[]float64{12.95}, []float64{77.6}, []float64{5}, []time.Time{at}, []int32{0})
	})
	run(10, func(int) error { // check-in, check-out
		if err := tx(testfactory.EmployeeClaims(e), `INSERT INTO attendance_sessions (organization_id, employee_id) VALUES ($1, $2)`,
			org.ID, e.ID); err != nil {
			return err
		}
		return tx(testfactory.EmployeeClaims(e), `UPDATE attendance_sessions SET checkout_at = now()
			WHERE organization_id = $1 AND employee_id = $2 AND checkout_at IS NULL`, org.ID, e.ID)
	})
	run(10, func(int) error { // an admin's recalculations
		return tx(testfactory.AdminClaims(org), `SELECT app.recalculate_session($1, $2)`, org.ID, closed)
	})
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if d := w.drift(org.ID); len(d) > 0 {
		t.Fatalf("drift after concurrent writers: %v", d)
	}
}

// A request can note only its own employee's fix: app.note_fix, which the fixes' trigger calls in the
// inserter's name, writes nothing of another employee or organization.
func TestSnapshots_ARequestNotesOnlyItsOwnFixes(t *testing.T) {
	t.Parallel()
	org := testfactory.NewOrg(t)
	me, colleague := testfactory.NewEmployee(t, org, "Me"), testfactory.NewEmployee(t, org, "Colleague")
	stranger := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Stranger")
	for _, target := range []testfactory.Employee{colleague, stranger} {
		err := db.InTx(t.Context(), testfactory.Pool(t), testfactory.EmployeeClaims(me), db.TxOptions{}, func(tx db.DBTX) error {
			_, err := tx.Exec(t.Context(), `SELECT app.note_fix($1, $2, 1, 2, now())`, target.OrgID, target.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var at *time.Time
		if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT last_location_at FROM employee_last_state
			WHERE organization_id = $1 AND employee_id = $2`, target.OrgID, target.ID).Scan(&at); err != nil || at != nil {
			t.Fatalf("%s's last fix written by another employee: %v (%v)", target.Name, at, err)
		}
	}
}
