package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// insertFix stores one fix as the owner inside tx (the foreign key takes KEY SHARE on the session).
func insertFix(t *testing.T, tx db.DBTX, e testfactory.Employee, session uuid.UUID, at time.Time, lat float64) {
	t.Helper()
	_, err := tx.Exec(t.Context(), `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id,
		latitude, longitude, accuracy) VALUES ($1, $2, $3, $4, $5, 13.0, 5)`, e.OrgID, session, at, e.ID, lat)
	if err != nil {
		t.Fatal(err)
	}
}

func distanceKm(t *testing.T, session uuid.UUID) float64 {
	t.Helper()
	var km *float64
	if err := testfactory.Pool(t).QueryRow(t.Context(),
		`SELECT total_distance_km FROM attendance_sessions WHERE id = $1`, session).Scan(&km); err != nil {
		t.Fatal(err)
	}
	if km == nil {
		return -1
	}
	return *km
}

// A check-out waits for GPS inserts of its session still in flight, so its distance includes them.
func TestCheckOut_WaitsForInFlightFixesOfTheSession(t *testing.T) {
	t.Parallel()
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Racing")
	session := testfactory.OpenSession(t, emp, time.Now().Add(-time.Hour))
	owner := testfactory.Pool(t)
	ins, err := owner.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Rollback(context.WithoutCancel(t.Context()))
	insertFix(t, ins, emp, session, time.Now().Add(-50*time.Minute), 52.0)
	insertFix(t, ins, emp, session, time.Now().Add(-40*time.Minute), 52.01) // ~1.1 km north

	pid := make(chan int32, 1)
	done := make(chan error, 1)
	go func() {
		done <- db.InTx(context.Background(), owner, testfactory.EmployeeClaims(emp), db.TxOptions{}, func(tx db.DBTX) error {
			var p int32
			if err := tx.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&p); err != nil {
				return err
			}
			pid <- p
			_, err := db.New().SessionCheckOut(context.Background(), tx, db.SessionCheckOutParams{
				OrgID: emp.OrgID, EmployeeID: emp.ID})
			return err
		})
	}()
	checkout := <-pid
	testfactory.Eventually(t, 20*time.Second, "the check-out to wait for the insert", func() (bool, error) {
		var blocked bool
		if err := owner.QueryRow(t.Context(), "SELECT cardinality(pg_blocking_pids($1)) > 0", checkout).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		return blocked, nil
	})
	if err := ins.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if km := distanceKm(t, session); km < 1 || km > 1.3 {
		t.Fatalf("distance %.3f km at check-out, want the in-flight fixes' ~1.1 km", km)
	}
}

// Two uploads of late fixes for the same closed session, interleaved, both succeed (no deadlock) and the
// distance counts the fixes of both.
func TestLateFixes_ConcurrentUploadsOfOneSessionDoNotDeadlock(t *testing.T) {
	t.Parallel()
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Late")
	now := time.Now()
	session := testfactory.ClosedSession(t, emp, now.Add(-2*time.Hour), now.Add(-time.Hour))
	owner := testfactory.Pool(t)
	begin := func() pgx.Tx {
		tx, err := owner.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(t.Context())) })
		// A wait that would never end (the deadlock this test is about) fails the test instead.
		if _, err := tx.Exec(t.Context(), "SET LOCAL lock_timeout = '10s'"); err != nil {
			t.Fatal(err)
		}
		// What an insert's foreign-key check holds until commit.
		if _, err := tx.Exec(t.Context(), "SELECT FROM attendance_sessions WHERE id = $1 FOR KEY SHARE", session); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	a, b := begin(), begin()
	insertFix(t, a, emp, session, now.Add(-110*time.Minute), 52.0) // recalculates: must not wait for b
	insertFix(t, a, emp, session, now.Add(-100*time.Minute), 52.01)
	if err := a.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	insertFix(t, b, emp, session, now.Add(-90*time.Minute), 52.02)
	if err := b.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if km := distanceKm(t, session); km < 2 || km > 2.5 {
		t.Fatalf("distance %.3f km, want both uploads' ~2.2 km", km)
	}
}

// A single-statement transaction is one round trip: the statement commits with it, a second statement is
// refused, and a failing statement leaves nothing behind.
func TestInTx_SingleStatementCommitsWithTheStatement(t *testing.T) {
	t.Parallel()
	org := testfactory.NewOrg(t)
	owner := testfactory.Pool(t)
	single := db.TxOptions{SingleStatement: true}
	var id uuid.UUID
	err := db.InTx(t.Context(), owner, testfactory.AdminClaims(org), single, func(tx db.DBTX) error {
		return tx.QueryRow(t.Context(), `INSERT INTO employees (organization_id, name) VALUES (app.org_id(), 'One')
			RETURNING id`).Scan(&id)
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := owner.QueryRow(t.Context(), "SELECT count(*) FROM employees WHERE id = $1", id).Scan(&n); err != nil || n != 1 {
		t.Fatalf("committed row: count %d, err %v", n, err)
	}

	err = db.InTx(t.Context(), owner, testfactory.AdminClaims(org), single, func(tx db.DBTX) error {
		if _, err := tx.Exec(t.Context(), `INSERT INTO employees (organization_id, name) VALUES (app.org_id(), 'Two')`); err != nil {
			return err
		}
		_, err := tx.Exec(t.Context(), "SELECT 1")
		return err
	})
	if err == nil {
		t.Fatal("a second statement ran in a single-statement transaction")
	}

	err = db.InTx(t.Context(), owner, testfactory.AdminClaims(org), single, func(tx db.DBTX) error {
		_, err := tx.Exec(t.Context(), `INSERT INTO employees (organization_id, name) VALUES (app.org_id(), 'Three'), (app.org_id(), '')`)
		return err
	})
	if err == nil {
		t.Fatal("an insert breaking a check constraint succeeded")
	}
	if err := owner.QueryRow(t.Context(), "SELECT count(*) FROM employees WHERE organization_id = $1 AND name = 'Three'",
		org.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the failed statement left %d rows (err %v)", n, err)
	}
	// The pool's connections are clean afterwards: a normal transaction works.
	err = db.InTx(t.Context(), owner, testfactory.AdminClaims(org), db.TxOptions{}, func(tx db.DBTX) error {
		return tx.QueryRow(t.Context(), "SELECT count(*) FROM employees").Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A session stored already closed is measured, and its summary kept once the row exists: an INSERT ... ON
// CONFLICT DO NOTHING that skips an existing session (the demo data, seeded again) leaves its summary alone.
func TestClosedSessionInsert_SkippedByOnConflictLeavesTheSummary(t *testing.T) {
	t.Parallel()
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Imported")
	now := time.Now().Truncate(time.Second)
	session := testfactory.ClosedSession(t, emp, now.Add(-3*time.Hour), now.Add(-time.Hour))
	owner := testfactory.Pool(t)
	summary := func() (duration int) {
		t.Helper()
		if err := owner.QueryRow(t.Context(), `SELECT total_duration_seconds FROM session_summaries
			WHERE organization_id = $1 AND session_id = $2`, emp.OrgID, session).Scan(&duration); err != nil {
			t.Fatal(err)
		}
		return duration
	}
	if d := summary(); d != 7200 {
		t.Fatalf("summary of the stored session: %d s, want 7200", d)
	}
	tag, err := owner.Exec(t.Context(), `INSERT INTO attendance_sessions (organization_id, id, employee_id, checkin_at, checkout_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, emp.OrgID, session, emp.ID, now.Add(-30*time.Hour), now)
	if err != nil || tag.RowsAffected() != 0 {
		t.Fatalf("the repeated insert: %v rows, err %v; want it skipped", tag.RowsAffected(), err)
	}
	if d := summary(); d != 7200 {
		t.Fatalf("the skipped insert rewrote the summary: %d s, want 7200", d)
	}
}
