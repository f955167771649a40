package db_test

// These tests run raw SQL through db.InTx against the real schema, so they prove what Postgres itself
// enforces for the API role (forced row-level security, column privileges, constraints and triggers),
// independent of any Go code above the database. Fixtures are committed through the owner pool, each test
// in fresh organizations, so the tests isolate themselves through the tenant boundary they test.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// tenantTables are every table that holds tenant data; the API role must see none of it without claims.
var tenantTables = []string{"organizations", "users", "employees", "attendance_sessions", "gps_locations", "expenses"}

// errRollback is returned from fn to make InTx roll back a probe that must leave no trace.
var errRollback = errors.New("test: roll back")

// tenant is one organization with:
//   - e1: a closed and an open session, 2 GPS points in the closed one and 1 in the open one, one PENDING
//     and one APPROVED expense;
//   - e2: a closed and an open session, 1 GPS point in each, one PENDING expense;
//   - idle: an employee with no sessions, points or expenses.
type tenant struct {
	org                            testfactory.Org
	e1, e2, idle                   testfactory.Employee
	closed1, open1, closed2, open2 uuid.UUID
	pending1, approved1, pending2  uuid.UUID
	checkin                        time.Time // check-in time of the open sessions
}

// adminCounts is what the organization's admin sees of each table: everything of the tenant.
func (tn tenant) adminCounts() map[string]int {
	return map[string]int{
		"organizations":       1,
		"users":               4, // admin + e1 + e2 + idle
		"employees":           3,
		"attendance_sessions": 4,
		"gps_locations":       5,
		"expenses":            3,
	}
}

// e1Counts is what employee e1 sees: its organization, its own user, employee row, sessions, points and
// expenses.
func (tn tenant) e1Counts() map[string]int {
	return map[string]int{
		"organizations":       1,
		"users":               1,
		"employees":           1,
		"attendance_sessions": 2,
		"gps_locations":       3,
		"expenses":            2,
	}
}

func newTenant(t *testing.T) tenant {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	tn := tenant{org: testfactory.NewOrg(t), checkin: now.Add(-time.Hour)}
	tn.e1 = testfactory.NewEmployee(t, tn.org, "Employee One")
	tn.e2 = testfactory.NewEmployee(t, tn.org, "Employee Two")
	tn.idle = testfactory.NewEmployee(t, tn.org, "Idle Employee")

	tn.closed1 = testfactory.ClosedSession(t, tn.e1, now.Add(-5*time.Hour), now.Add(-4*time.Hour))
	tn.open1 = testfactory.OpenSession(t, tn.e1, tn.checkin)
	tn.closed2 = testfactory.ClosedSession(t, tn.e2, now.Add(-5*time.Hour), now.Add(-4*time.Hour))
	tn.open2 = testfactory.OpenSession(t, tn.e2, tn.checkin)

	addPoint(t, tn.e1, tn.closed1, now.Add(-290*time.Minute))
	addPoint(t, tn.e1, tn.closed1, now.Add(-280*time.Minute))
	addPoint(t, tn.e1, tn.open1, now.Add(-30*time.Minute))
	addPoint(t, tn.e2, tn.closed2, now.Add(-290*time.Minute))
	addPoint(t, tn.e2, tn.open2, now.Add(-30*time.Minute))

	tn.pending1 = addExpense(t, tn.e1, "PENDING")
	tn.approved1 = addExpense(t, tn.e1, "APPROVED")
	tn.pending2 = addExpense(t, tn.e2, "PENDING")
	return tn
}

func addPoint(t *testing.T, e testfactory.Employee, session uuid.UUID, at time.Time) {
	t.Helper()
	ownerExec(t, `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude)
		VALUES ($1, $2, $3, $4, 52.52, 13.405)`, e.OrgID, session, at, e.ID)
}

func addExpense(t *testing.T, e testfactory.Employee, status string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if status == "PENDING" {
		ownerExec(t, `INSERT INTO expenses (organization_id, id, employee_id, amount, description)
			VALUES ($1, $2, $3, 12.50, 'Taxi to site')`, e.OrgID, id, e.ID)
	} else {
		ownerExec(t, `INSERT INTO expenses (organization_id, id, employee_id, amount, description, status,
			reviewed_at, reviewed_by, rejection_comment)
			VALUES ($1, $2, $3, 40, 'Hotel night', $4, now(), 'fixture', 'fixture review')`, e.OrgID, id, e.ID, status)
	}
	return id
}

// ownerExec runs a statement through the owner pool (no RLS) and fails the test on error.
func ownerExec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := testfactory.Pool(t).Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("owner %q: %v", sql, err)
	}
}

// ownerInt reads one integer through the owner pool.
func ownerInt(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := testfactory.Pool(t).QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("owner %q: %v", sql, err)
	}
	return n
}

// ownerString reads one text value through the owner pool ("<null>" for NULL).
func ownerString(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var s *string
	if err := testfactory.Pool(t).QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("owner %q: %v", sql, err)
	}
	if s == nil {
		return "<null>"
	}
	return *s
}

// inTx runs fn through db.InTx on the shared pool.
func inTx(t *testing.T, c db.Claims, o db.TxOptions, fn func(db.DBTX) error) error {
	t.Helper()
	return db.InTx(t.Context(), testfactory.Pool(t), c, o, fn)
}

// execAs runs one statement as the API role under c and commits it when it succeeds.
func execAs(t *testing.T, c db.Claims, sql string, args ...any) (pgconn.CommandTag, error) {
	t.Helper()
	var tag pgconn.CommandTag
	err := inTx(t, c, db.TxOptions{}, func(tx db.DBTX) error {
		var err error
		tag, err = tx.Exec(t.Context(), sql, args...)
		return err
	})
	return tag, err
}

// probeAs runs one statement as the API role under c and always rolls it back; it returns the rows the
// statement affected or its error. Positive controls use it so they leave the fixtures untouched.
func probeAs(t *testing.T, c db.Claims, sql string, args ...any) (int64, error) {
	t.Helper()
	var n int64
	err := inTx(t, c, db.TxOptions{}, func(tx db.DBTX) error {
		tag, err := tx.Exec(t.Context(), sql, args...)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return errRollback
	})
	if errors.Is(err, errRollback) {
		return n, nil
	}
	return n, err
}

// wantCode fails unless err is a Postgres error with one of codes; it returns that error.
func wantCode(t *testing.T, err error, codes ...string) *pgconn.PgError {
	t.Helper()
	if err == nil {
		t.Fatalf("statement succeeded, want SQLSTATE %s", strings.Join(codes, " or "))
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		t.Fatalf("error %v (%T) is not a Postgres error, want SQLSTATE %s", err, err, strings.Join(codes, " or "))
	}
	if !slices.Contains(codes, pg.Code) {
		t.Fatalf("SQLSTATE %s (%s), want %s", pg.Code, pg.Message, strings.Join(codes, " or "))
	}
	return pg
}

// wantRows fails unless the statement succeeded and affected exactly n rows.
func wantRows(t *testing.T, tag pgconn.CommandTag, err error, n int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("statement failed: %v, want %d rows affected", err, n)
	}
	if tag.RowsAffected() != n {
		t.Fatalf("%d rows affected, want %d", tag.RowsAffected(), n)
	}
}

// countTables counts every tenant table inside tx.
func countTables(t *testing.T, tx db.DBTX) map[string]int {
	t.Helper()
	got := make(map[string]int, len(tenantTables))
	for _, table := range tenantTables {
		var n int
		if err := tx.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		got[table] = n
	}
	return got
}

// ids collects the uuid column of a query inside tx, sorted.
func ids(t *testing.T, tx db.DBTX, sql string, args ...any) []string {
	t.Helper()
	rows, err := tx.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("%q: %v", sql, err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var id uuid.UUID
		err := r.Scan(&id)
		return id.String(), err
	})
	if err != nil {
		t.Fatalf("%q: %v", sql, err)
	}
	slices.Sort(got)
	return got
}

func sorted(us ...uuid.UUID) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	slices.Sort(out)
	return out
}

func currentUser(t *testing.T, tx db.DBTX) string {
	t.Helper()
	var u string
	if err := tx.QueryRow(t.Context(), "SELECT current_user::text").Scan(&u); err != nil {
		t.Fatal(err)
	}
	return u
}

// Visibility ---------------------------------------------------------------------------------------------

func TestRLS_APIRoleSeesNoRowsWithoutClaims(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	// The rows exist: the owner sees them.
	for _, table := range tenantTables {
		if n := ownerInt(t, "SELECT count(*) FROM "+table); n == 0 {
			t.Fatalf("fixture: owner sees no rows in %s", table)
		}
	}
	if n := ownerInt(t, "SELECT count(*) FROM employees WHERE organization_id = $1", tn.org.ID); n != 3 {
		t.Fatalf("fixture: owner sees %d employees of the tenant, want 3", n)
	}

	// Besides the core tables, any table of a later migration that carries organization_id.
	all := slices.Clone(tenantTables)
	rows, err := testfactory.Pool(t).Query(t.Context(), `SELECT DISTINCT c.relname::text FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attname = 'organization_id' AND NOT a.attisdropped`)
	if err != nil {
		t.Fatal(err)
	}
	more, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range more {
		if !slices.Contains(all, table) {
			all = append(all, table)
		}
	}

	err = inTx(t, db.Claims{}, db.TxOptions{ReadOnly: true}, func(tx db.DBTX) error {
		if u := currentUser(t, tx); u != db.APIRole {
			t.Errorf("current_user inside InTx = %q, want %q", u, db.APIRole)
		}
		for _, table := range all {
			var n int
			if err := tx.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
				t.Fatalf("count %s: %v", table, err)
			}
			if n != 0 {
				t.Errorf("without claims the API role sees %d rows of %s, want 0", n, table)
			}
		}
		if got := ids(t, tx, "SELECT id FROM employees WHERE id = $1", tn.e1.ID); len(got) != 0 {
			t.Errorf("without claims a lookup by id returned %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRLS_APIRoleWithoutClaimsCannotWrite(t *testing.T) {
	t.Parallel()
	tn := newTenant(t)
	_, err := execAs(t, db.Claims{}, `INSERT INTO employees (organization_id, name) VALUES ($1, 'Nobody')`, tn.org.ID)
	wantCode(t, err, "42501")
	tag, err := execAs(t, db.Claims{}, `UPDATE employees SET name = 'Renamed' WHERE organization_id = $1`, tn.org.ID)
	wantRows(t, tag, err, 0)
	if n := ownerInt(t, "SELECT count(*) FROM employees WHERE organization_id = $1 AND name = 'Renamed'", tn.org.ID); n != 0 {
		t.Fatalf("%d employees renamed without claims", n)
	}
}

func TestRLS_AdminSeesExactlyItsOrganization(t *testing.T) {
	t.Parallel()
	a, b := newTenant(t), newTenant(t)
	err := inTx(t, testfactory.AdminClaims(a.org), db.TxOptions{ReadOnly: true}, func(tx db.DBTX) error {
		if u := currentUser(t, tx); u != db.APIRole {
			t.Errorf("current_user = %q, want %q", u, db.APIRole)
		}
		got, want := countTables(t, tx), a.adminCounts()
		for _, table := range tenantTables {
			if got[table] != want[table] {
				t.Errorf("admin of A sees %d rows of %s, want exactly %d (A's fixture)", got[table], table, want[table])
			}
		}
		if got, want := ids(t, tx, "SELECT id FROM employees"), sorted(a.e1.ID, a.e2.ID, a.idle.ID); !slices.Equal(got, want) {
			t.Errorf("employees visible to admin of A = %v, want %v", got, want)
		}
		if got, want := ids(t, tx, "SELECT id FROM attendance_sessions"),
			sorted(a.closed1, a.open1, a.closed2, a.open2); !slices.Equal(got, want) {
			t.Errorf("sessions visible to admin of A = %v, want %v", got, want)
		}
		if got, want := ids(t, tx, "SELECT id FROM expenses"), sorted(a.pending1, a.approved1, a.pending2); !slices.Equal(got, want) {
			t.Errorf("expenses visible to admin of A = %v, want %v", got, want)
		}

		// Nothing of B, even when asked for by id.
		lookups := []struct {
			name string
			sql  string
			args []any
		}{
			{"organization", "SELECT id FROM organizations WHERE id = $1", []any{b.org.ID}},
			{"users", "SELECT id FROM users WHERE organization_id = $1 OR id = $2", []any{b.org.ID, b.org.AdminUserID}},
			{"employees", "SELECT id FROM employees WHERE id = ANY($1)", []any{[]uuid.UUID{b.e1.ID, b.e2.ID, b.idle.ID}}},
			{"sessions", "SELECT id FROM attendance_sessions WHERE id = ANY($1) OR organization_id = $2",
				[]any{[]uuid.UUID{b.closed1, b.open1, b.closed2, b.open2}, b.org.ID}},
			{"gps_locations", "SELECT id FROM gps_locations WHERE organization_id = $1 OR session_id = ANY($2)",
				[]any{b.org.ID, []uuid.UUID{b.closed1, b.open1, b.closed2, b.open2}}},
			{"expenses", "SELECT id FROM expenses WHERE id = ANY($1) OR organization_id = $2",
				[]any{[]uuid.UUID{b.pending1, b.approved1, b.pending2}, b.org.ID}},
		}
		for _, l := range lookups {
			if got := ids(t, tx, l.sql, l.args...); len(got) != 0 {
				t.Errorf("admin of A can see B's %s: %v", l.name, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRLS_EmployeeSeesOnlyItsOwnRows(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	err := inTx(t, testfactory.EmployeeClaims(a.e1), db.TxOptions{ReadOnly: true}, func(tx db.DBTX) error {
		got, want := countTables(t, tx), a.e1Counts()
		for _, table := range tenantTables {
			if got[table] != want[table] {
				t.Errorf("employee A1 sees %d rows of %s, want exactly %d (its own)", got[table], table, want[table])
			}
		}
		checks := []struct {
			name string
			sql  string
			want []string
		}{
			{"users", "SELECT id FROM users", sorted(a.e1.UserID)},
			{"employees", "SELECT id FROM employees", sorted(a.e1.ID)},
			{"sessions", "SELECT id FROM attendance_sessions", sorted(a.closed1, a.open1)},
			{"gps sessions", "SELECT DISTINCT session_id FROM gps_locations", sorted(a.closed1, a.open1)},
			{"gps employees", "SELECT DISTINCT employee_id FROM gps_locations", sorted(a.e1.ID)},
			{"expenses", "SELECT id FROM expenses", sorted(a.pending1, a.approved1)},
		}
		for _, c := range checks {
			if got := ids(t, tx, c.sql); !slices.Equal(got, c.want) {
				t.Errorf("%s visible to A1 = %v, want %v", c.name, got, c.want)
			}
		}
		// A2's rows are invisible even by id.
		lookups := []struct {
			name string
			sql  string
			arg  any
		}{
			{"employee", "SELECT id FROM employees WHERE id = $1", a.e2.ID},
			{"user", "SELECT id FROM users WHERE id = $1", a.e2.UserID},
			{"sessions", "SELECT id FROM attendance_sessions WHERE employee_id = $1", a.e2.ID},
			{"gps points", "SELECT id FROM gps_locations WHERE employee_id = $1", a.e2.ID},
			{"expenses", "SELECT id FROM expenses WHERE employee_id = $1", a.e2.ID},
		}
		for _, l := range lookups {
			if got := ids(t, tx, l.sql, l.arg); len(got) != 0 {
				t.Errorf("A1 can see A2's %s: %v", l.name, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Employee write restrictions ----------------------------------------------------------------------------

func TestRLS_EmployeeWritesAreLimitedToItsOwnRowsAndColumns(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	c1 := testfactory.EmployeeClaims(a.e1)

	t.Run("positive control: can file a PENDING expense and add a point to its own open session", func(t *testing.T) {
		t.Parallel()
		n, err := probeAs(t, c1, `INSERT INTO expenses (organization_id, employee_id, amount, description)
			VALUES ($1, $2, 9.99, 'Parking')`, a.org.ID, a.e1.ID)
		if err != nil || n != 1 {
			t.Fatalf("own expense: %d rows, %v; want 1 row", n, err)
		}
		n, err = probeAs(t, c1, `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude)
			VALUES ($1, $2, now(), $3, 1, 1)`, a.org.ID, a.open1, a.e1.ID)
		if err != nil || n != 1 {
			t.Fatalf("own point: %d rows, %v; want 1 row", n, err)
		}
	})

	t.Run("cannot open a session for another employee", func(t *testing.T) {
		t.Parallel()
		// The idle employee has no open session, so nothing but the tenant rules can stop the insert.
		// Postgres runs BEFORE ROW triggers before the RLS WITH CHECK: the check-in trigger, which runs as
		// the API role, cannot see the other employee (employees_select) and refuses with PT403 first.
		// Either refusal is a 403; what matters is that it is refused and nothing is written.
		_, err := execAs(t, c1, `INSERT INTO attendance_sessions (organization_id, employee_id) VALUES ($1, $2)`,
			a.org.ID, a.idle.ID)
		wantCode(t, err, "42501", "PT403")
		if n := ownerInt(t, "SELECT count(*) FROM attendance_sessions WHERE organization_id = $1 AND employee_id = $2",
			a.org.ID, a.idle.ID); n != 0 {
			t.Fatalf("%d sessions written for the other employee", n)
		}
	})

	t.Run("cannot add a point to another employee's session", func(t *testing.T) {
		t.Parallel()
		before := ownerInt(t, "SELECT count(*) FROM gps_locations WHERE organization_id = $1", a.org.ID)
		// As itself into A2's session: the policy passes, the composite foreign key does not.
		_, err := execAs(t, c1, `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude)
			VALUES ($1, $2, now(), $3, 1, 1)`, a.org.ID, a.open2, a.e1.ID)
		wantCode(t, err, "42501", "23503")
		// As A2 into A2's session: the policy refuses.
		_, err = execAs(t, c1, `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude)
			VALUES ($1, $2, now(), $3, 1, 1)`, a.org.ID, a.open2, a.e2.ID)
		wantCode(t, err, "42501")
		if after := ownerInt(t, "SELECT count(*) FROM gps_locations WHERE organization_id = $1", a.org.ID); after != before {
			t.Fatalf("gps points of the tenant went from %d to %d", before, after)
		}
	})

	t.Run("cannot close another employee's session", func(t *testing.T) {
		t.Parallel()
		tag, err := execAs(t, c1, `UPDATE attendance_sessions SET checkout_at = now() WHERE id = $1`, a.open2)
		wantRows(t, tag, err, 0)
		if s := ownerString(t, "SELECT checkout_at::text FROM attendance_sessions WHERE id = $1", a.open2); s != "<null>" {
			t.Fatalf("A2's session was closed: checkout_at = %s", s)
		}
	})

	t.Run("cannot set the distance of its own session", func(t *testing.T) {
		t.Parallel()
		const q = "SELECT coalesce(total_distance_km::text, '<null>') FROM attendance_sessions WHERE id = $1"
		before := ownerString(t, q, a.closed1)
		_, err := execAs(t, c1, `UPDATE attendance_sessions SET total_distance_km = 42 WHERE id = $1`, a.closed1)
		wantCode(t, err, "42501")
		if after := ownerString(t, q, a.closed1); after != before {
			t.Fatalf("distance changed from %s to %s", before, after)
		}
	})

	t.Run("cannot file an expense that is already approved or reviewed", func(t *testing.T) {
		t.Parallel()
		before := ownerInt(t, "SELECT count(*) FROM expenses WHERE organization_id = $1", a.org.ID)
		_, err := execAs(t, c1, `INSERT INTO expenses (organization_id, employee_id, amount, description, status)
			VALUES ($1, $2, 10, 'Lunch', 'APPROVED')`, a.org.ID, a.e1.ID)
		wantCode(t, err, "42501")
		_, err = execAs(t, c1, `INSERT INTO expenses (organization_id, employee_id, amount, description, reviewed_by)
			VALUES ($1, $2, 10, 'Lunch', 'myself')`, a.org.ID, a.e1.ID)
		wantCode(t, err, "42501")
		_, err = execAs(t, c1, `INSERT INTO expenses (organization_id, employee_id, amount, description)
			VALUES ($1, $2, 10, 'Lunch')`, a.org.ID, a.e2.ID)
		wantCode(t, err, "42501")
		if after := ownerInt(t, "SELECT count(*) FROM expenses WHERE organization_id = $1", a.org.ID); after != before {
			t.Fatalf("expenses of the tenant went from %d to %d", before, after)
		}
	})

	t.Run("cannot review any expense", func(t *testing.T) {
		t.Parallel()
		for _, id := range []uuid.UUID{a.pending1, a.pending2} {
			tag, err := execAs(t, c1, `UPDATE expenses SET status = 'APPROVED', reviewed_at = now() WHERE id = $1`, id)
			if err != nil {
				wantCode(t, err, "42501")
			} else if tag.RowsAffected() != 0 {
				t.Fatalf("employee approved expense %s (%d rows)", id, tag.RowsAffected())
			}
			if s := ownerString(t, "SELECT status FROM expenses WHERE id = $1", id); s != "PENDING" {
				t.Fatalf("expense %s status = %s after the employee's update, want PENDING", id, s)
			}
		}
	})

	t.Run("cannot create employees", func(t *testing.T) {
		t.Parallel()
		before := ownerInt(t, "SELECT count(*) FROM employees WHERE organization_id = $1", a.org.ID)
		_, err := execAs(t, c1, `INSERT INTO employees (organization_id, name) VALUES ($1, 'Sneaky')`, a.org.ID)
		wantCode(t, err, "42501")
		if after := ownerInt(t, "SELECT count(*) FROM employees WHERE organization_id = $1", a.org.ID); after != before {
			t.Fatalf("employees went from %d to %d", before, after)
		}
	})
}

// Admin cross-tenant writes ------------------------------------------------------------------------------

func TestRLS_AdminCannotWriteAnotherOrganization(t *testing.T) {
	t.Parallel()
	a, b := newTenant(t), newTenant(t)
	ca := testfactory.AdminClaims(a.org)

	t.Run("positive control: can create and rename employees of its own organization", func(t *testing.T) {
		t.Parallel()
		n, err := probeAs(t, ca, `INSERT INTO employees (organization_id, name) VALUES ($1, 'New Hire')`, a.org.ID)
		if err != nil || n != 1 {
			t.Fatalf("insert: %d rows, %v; want 1", n, err)
		}
		n, err = probeAs(t, ca, `UPDATE employees SET name = 'Renamed' WHERE organization_id = $1`, a.org.ID)
		if err != nil || n != 3 {
			t.Fatalf("update: %d rows, %v; want 3", n, err)
		}
	})

	t.Run("cannot insert an employee into B", func(t *testing.T) {
		t.Parallel()
		_, err := execAs(t, ca, `INSERT INTO employees (organization_id, name) VALUES ($1, 'Infiltrator')`, b.org.ID)
		wantCode(t, err, "42501")
		if n := ownerInt(t, "SELECT count(*) FROM employees WHERE organization_id = $1", b.org.ID); n != 3 {
			t.Fatalf("B has %d employees, want 3", n)
		}
	})

	t.Run("cannot move its own employee to B", func(t *testing.T) {
		t.Parallel()
		_, err := execAs(t, ca, `UPDATE employees SET organization_id = $1 WHERE id = $2`, b.org.ID, a.e1.ID)
		wantCode(t, err, "42501")
		if s := ownerString(t, "SELECT organization_id::text FROM employees WHERE id = $1", a.e1.ID); s != a.org.ID.String() {
			t.Fatalf("employee moved to %s", s)
		}
	})

	t.Run("cannot open a session on an employee's behalf", func(t *testing.T) {
		t.Parallel()
		// The idle employee is visible to the admin, so the check-in trigger passes; the insert policy
		// (employee_id = the caller's own employee) refuses.
		_, err := execAs(t, ca, `INSERT INTO attendance_sessions (organization_id, employee_id) VALUES ($1, $2)`,
			a.org.ID, a.idle.ID)
		wantCode(t, err, "42501")
	})

	t.Run("updates of B's rows affect nothing", func(t *testing.T) {
		t.Parallel()
		tag, err := execAs(t, ca, `UPDATE employees SET name = 'Hacked' WHERE organization_id = $1 OR id = ANY($2)`,
			b.org.ID, []uuid.UUID{b.e1.ID, b.e2.ID})
		wantRows(t, tag, err, 0)
		tag, err = execAs(t, ca, `UPDATE attendance_sessions SET checkout_at = now() WHERE id = ANY($1)`,
			[]uuid.UUID{b.open1, b.open2})
		wantRows(t, tag, err, 0)
		tag, err = execAs(t, ca, `UPDATE expenses SET status = 'APPROVED', reviewed_at = now() WHERE organization_id = $1`, b.org.ID)
		wantRows(t, tag, err, 0)

		if n := ownerInt(t, "SELECT count(*) FROM employees WHERE organization_id = $1 AND name = 'Hacked'", b.org.ID); n != 0 {
			t.Errorf("%d of B's employees renamed", n)
		}
		if n := ownerInt(t, "SELECT count(*) FROM attendance_sessions WHERE organization_id = $1 AND checkout_at IS NULL", b.org.ID); n != 2 {
			t.Errorf("B has %d open sessions, want 2", n)
		}
		if n := ownerInt(t, "SELECT count(*) FROM expenses WHERE organization_id = $1 AND status = 'PENDING'", b.org.ID); n != 2 {
			t.Errorf("B has %d pending expenses, want 2", n)
		}
	})
}

// Session state machine ----------------------------------------------------------------------------------

func TestSessions_ClosingAClosedSessionIsRefused(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	before := ownerString(t, "SELECT checkout_at::text FROM attendance_sessions WHERE id = $1", a.closed1)
	for name, c := range map[string]db.Claims{"employee": testfactory.EmployeeClaims(a.e1), "admin": testfactory.AdminClaims(a.org)} {
		_, err := execAs(t, c, `UPDATE attendance_sessions SET checkout_at = now() WHERE id = $1`, a.closed1)
		if pg := wantCode(t, err, "PT400"); !strings.Contains(pg.Message, "already closed") {
			t.Errorf("%s: message %q, want it to say the session is already closed", name, pg.Message)
		}
	}
	if after := ownerString(t, "SELECT checkout_at::text FROM attendance_sessions WHERE id = $1", a.closed1); after != before {
		t.Fatalf("checkout_at changed from %s to %s", before, after)
	}
}

func TestSessions_CheckoutFixesTheDuration(t *testing.T) {
	t.Parallel()
	org := testfactory.NewOrg(t)
	e := testfactory.NewEmployee(t, org, "Walker")
	checkin := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	session := testfactory.OpenSession(t, e, checkin)
	checkout := checkin.Add(1*time.Hour + 23*time.Minute + 45*time.Second)

	var got int
	err := inTx(t, testfactory.EmployeeClaims(e), db.TxOptions{}, func(tx db.DBTX) error {
		return tx.QueryRow(t.Context(), `UPDATE attendance_sessions SET checkout_at = $2 WHERE id = $1
			RETURNING total_duration_seconds`, session, checkout).Scan(&got)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != 5025 {
		t.Fatalf("total_duration_seconds = %d, want 5025 (checkout - checkin)", got)
	}
	if n := ownerInt(t, "SELECT total_duration_seconds FROM attendance_sessions WHERE id = $1", session); n != 5025 {
		t.Fatalf("stored total_duration_seconds = %d, want 5025", n)
	}
	// And once closed, it stays closed.
	_, err = execAs(t, testfactory.EmployeeClaims(e), `UPDATE attendance_sessions SET checkout_at = $2 WHERE id = $1`,
		session, checkout.Add(time.Hour))
	wantCode(t, err, "PT400")
}

func TestSessions_CheckinTimeAndEmployeeNeverChange(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	before := ownerString(t, "SELECT checkin_at::text FROM attendance_sessions WHERE id = $1", a.open1)

	// The API role may not even name the column.
	_, err := execAs(t, testfactory.AdminClaims(a.org), `UPDATE attendance_sessions SET checkin_at = checkin_at - interval '1 hour'
		WHERE id = $1`, a.open1)
	wantCode(t, err, "42501")

	// Whoever writes, the trigger refuses: the owner too.
	_, err = testfactory.Pool(t).Exec(t.Context(), `UPDATE attendance_sessions SET checkin_at = checkin_at - interval '1 hour'
		WHERE id = $1`, a.open1)
	wantCode(t, err, "PT400")
	_, err = testfactory.Pool(t).Exec(t.Context(), `UPDATE attendance_sessions SET employee_id = $2 WHERE id = $1`,
		a.closed1, a.idle.ID)
	wantCode(t, err, "PT400")

	if after := ownerString(t, "SELECT checkin_at::text FROM attendance_sessions WHERE id = $1", a.open1); after != before {
		t.Fatalf("checkin_at changed from %s to %s", before, after)
	}
}

func TestSessions_DeactivatedEmployeeCannotCheckIn(t *testing.T) {
	t.Parallel()
	org := testfactory.NewOrg(t)
	e := testfactory.NewEmployee(t, org, "Leaver")
	ownerExec(t, `UPDATE employees SET is_active = false WHERE organization_id = $1 AND id = $2`, org.ID, e.ID)

	// Its request is refused before any statement (app.check_caller)...
	_, err := execAs(t, testfactory.EmployeeClaims(e), `INSERT INTO attendance_sessions (organization_id, employee_id)
		VALUES ($1, $2)`, org.ID, e.ID)
	wantCode(t, err, "PT401")
	// ...and the rule of the table holds on its own, for claims that skip that check.
	_, err = execAs(t, withoutUser(testfactory.EmployeeClaims(e)), `INSERT INTO attendance_sessions (organization_id, employee_id)
		VALUES ($1, $2)`, org.ID, e.ID)
	pg := wantCode(t, err, "PT403")
	if pg.Hint != "FORBIDDEN" {
		t.Errorf("hint = %q, want FORBIDDEN", pg.Hint)
	}
	if n := ownerInt(t, "SELECT count(*) FROM attendance_sessions WHERE employee_id = $1", e.ID); n != 0 {
		t.Fatalf("%d sessions written for a deactivated employee", n)
	}

	// Reactivated, the same insert works: the refusal was about is_active.
	ownerExec(t, `UPDATE employees SET is_active = true WHERE organization_id = $1 AND id = $2`, org.ID, e.ID)
	_, err = execAs(t, testfactory.EmployeeClaims(e), `INSERT INTO attendance_sessions (organization_id, employee_id)
		VALUES ($1, $2)`, org.ID, e.ID)
	if err != nil {
		t.Fatalf("reactivated employee cannot check in: %v", err)
	}
}

// One open session per employee ---------------------------------------------------------------------------

func TestSessions_SecondOpenSessionIsRefused(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	// e1 already has an open session.
	_, err := execAs(t, testfactory.EmployeeClaims(a.e1), `INSERT INTO attendance_sessions (organization_id, employee_id)
		VALUES ($1, $2)`, a.org.ID, a.e1.ID)
	if pg := wantCode(t, err, "23505"); pg.ConstraintName != "attendance_sessions_one_active" {
		t.Errorf("constraint = %q, want attendance_sessions_one_active", pg.ConstraintName)
	}
	// Whoever writes: the owner too.
	_, err = testfactory.Pool(t).Exec(t.Context(), `INSERT INTO attendance_sessions (organization_id, employee_id)
		VALUES ($1, $2)`, a.org.ID, a.e1.ID)
	if pg := wantCode(t, err, "23505"); pg.ConstraintName != "attendance_sessions_one_active" {
		t.Errorf("owner: constraint = %q, want attendance_sessions_one_active", pg.ConstraintName)
	}
	if n := ownerInt(t, "SELECT count(*) FROM attendance_sessions WHERE employee_id = $1 AND checkout_at IS NULL", a.e1.ID); n != 1 {
		t.Fatalf("e1 has %d open sessions, want 1", n)
	}
	// A closed session does not block: after checking out, checking in again works.
	if _, err := execAs(t, testfactory.EmployeeClaims(a.e1), `UPDATE attendance_sessions SET checkout_at = now() WHERE id = $1`, a.open1); err != nil {
		t.Fatal(err)
	}
	if _, err := execAs(t, testfactory.EmployeeClaims(a.e1), `INSERT INTO attendance_sessions (organization_id, employee_id)
		VALUES ($1, $2)`, a.org.ID, a.e1.ID); err != nil {
		t.Fatalf("check in after checkout: %v", err)
	}
}

func TestSessions_ConcurrentCheckInsYieldExactlyOneOpenSession(t *testing.T) {
	t.Parallel()
	const n = 20
	org := testfactory.NewOrg(t)
	e := testfactory.NewEmployee(t, org, "Racer")
	pool, err := db.NewPool(t.Context(), db.PoolConfig{URL: testfactory.URL(t), MaxConns: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	claims := testfactory.EmployeeClaims(e)
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = db.InTx(context.Background(), pool, claims, db.TxOptions{}, func(tx db.DBTX) error {
				_, err := tx.Exec(context.Background(), `INSERT INTO attendance_sessions (organization_id, employee_id)
					VALUES ($1, $2)`, org.ID, e.ID)
				return err
			})
		}()
	}
	close(start)
	wg.Wait()

	ok, dup := 0, 0
	for i, err := range errs {
		var pg *pgconn.PgError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &pg) && pg.Code == "23505" && pg.ConstraintName == "attendance_sessions_one_active":
			dup++
		default:
			t.Errorf("goroutine %d: unexpected error %v", i, err)
		}
	}
	if ok != 1 || dup != n-1 {
		t.Fatalf("%d successes and %d unique violations, want 1 and %d", ok, dup, n-1)
	}
	if c := ownerInt(t, "SELECT count(*) FROM attendance_sessions WHERE employee_id = $1", e.ID); c != 1 {
		t.Fatalf("%d sessions stored, want 1", c)
	}
}

// Cross-tenant references ---------------------------------------------------------------------------------

func TestSchema_RowsCannotReferenceAnotherTenant(t *testing.T) {
	t.Parallel()
	a, b := newTenant(t), newTenant(t)
	p := testfactory.Pool(t)

	// As the owner (no RLS at all), only the composite keys stand in the way.
	_, err := p.Exec(t.Context(), `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude)
		VALUES ($1, $2, now(), $3, 1, 1)`, b.org.ID, a.open1, a.e1.ID)
	wantCode(t, err, "23503")
	_, err = p.Exec(t.Context(), `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude)
		VALUES ($1, $2, now(), $3, 1, 1)`, b.org.ID, a.open1, b.e1.ID)
	wantCode(t, err, "23503")
	// A point's employee must be its session's employee, even within one organization.
	_, err = p.Exec(t.Context(), `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id, latitude, longitude)
		VALUES ($1, $2, now(), $3, 1, 1)`, a.org.ID, a.open1, a.e2.ID)
	wantCode(t, err, "23503")

	_, err = p.Exec(t.Context(), `INSERT INTO expenses (organization_id, employee_id, amount, description)
		VALUES ($1, $2, 5, 'Cross-tenant')`, a.org.ID, b.e1.ID)
	if pg := wantCode(t, err, "23503"); pg.ConstraintName != "expenses_employee_fkey" {
		t.Errorf("constraint = %q, want expenses_employee_fkey", pg.ConstraintName)
	}
	_, err = p.Exec(t.Context(), `INSERT INTO employees (organization_id, name, user_id) VALUES ($1, 'Borrowed user', $2)`,
		a.org.ID, b.e1.UserID)
	if pg := wantCode(t, err, "23503"); pg.ConstraintName != "employees_user_fkey" {
		t.Errorf("constraint = %q, want employees_user_fkey", pg.ConstraintName)
	}

	if n := ownerInt(t, "SELECT count(*) FROM gps_locations WHERE organization_id = ANY($1)", []uuid.UUID{a.org.ID, b.org.ID}); n != 10 {
		t.Errorf("%d points in A and B, want the 10 of the fixtures", n)
	}
	if n := ownerInt(t, "SELECT count(*) FROM expenses WHERE organization_id = $1", a.org.ID); n != 3 {
		t.Errorf("%d expenses in A, want the 3 of the fixture", n)
	}
}

// Expense review ------------------------------------------------------------------------------------------

func TestExpenses_ReviewedOnceAndRejectionNeedsAComment(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	ca := testfactory.AdminClaims(a.org)

	tag, err := execAs(t, ca, `UPDATE expenses SET status = 'APPROVED', reviewed_at = now(), reviewed_by = $2 WHERE id = $1`,
		a.pending1, a.org.AdminUserID.String())
	wantRows(t, tag, err, 1)

	_, err = execAs(t, ca, `UPDATE expenses SET status = 'REJECTED', rejection_comment = 'changed my mind' WHERE id = $1`, a.pending1)
	if pg := wantCode(t, err, "PT400"); !strings.Contains(pg.Message, "already been approved") {
		t.Errorf("message %q, want it to contain %q", pg.Message, "already been approved")
	}
	if s := ownerString(t, "SELECT status FROM expenses WHERE id = $1", a.pending1); s != "APPROVED" {
		t.Fatalf("status = %s, want APPROVED", s)
	}

	for _, comment := range []any{nil, "", "   "} {
		_, err = execAs(t, ca, `UPDATE expenses SET status = 'REJECTED', rejection_comment = $2, reviewed_at = now() WHERE id = $1`,
			a.pending2, comment)
		if pg := wantCode(t, err, "23514"); pg.ConstraintName != "expenses_rejection_needs_comment" {
			t.Errorf("comment %q: constraint %q, want expenses_rejection_needs_comment", comment, pg.ConstraintName)
		}
	}
	if s := ownerString(t, "SELECT status FROM expenses WHERE id = $1", a.pending2); s != "PENDING" {
		t.Fatalf("status = %s after refused rejections, want PENDING", s)
	}
	tag, err = execAs(t, ca, `UPDATE expenses SET status = 'REJECTED', rejection_comment = 'No receipt', reviewed_at = now() WHERE id = $1`, a.pending2)
	wantRows(t, tag, err, 1)

	// What was submitted never changes, whoever writes.
	_, err = testfactory.Pool(t).Exec(t.Context(), `UPDATE expenses SET amount = amount + 1 WHERE id = $1`, a.approved1)
	wantCode(t, err, "PT400")
}

// An employee's own expenses: filed, never changed or reviewed by the employee, even as an admin.
func TestExpenses_AnEmployeeCannotChangeOrReviewItsOwnUnderItsClaims(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	c1 := testfactory.EmployeeClaims(a.e1)
	for name, sql := range map[string]string{
		"raise the amount":   `UPDATE expenses SET amount = 9999 WHERE id = $1`,
		"approve it":         `UPDATE expenses SET status = 'APPROVED' WHERE id = $1`,
		"reword it":          `UPDATE expenses SET description = 'Something else' WHERE id = $1`,
		"mark it reviewed":   `UPDATE expenses SET reviewed_at = now(), reviewed_by = 'me' WHERE id = $1`,
		"delete it":          `DELETE FROM expenses WHERE id = $1`,
		"attach any receipt": `UPDATE receipts SET status = 'attached' WHERE expense_id = $1`,
	} {
		t.Run(name, func(t *testing.T) { // refused, or the row is not the employee's to write
			tag, err := execAs(t, c1, sql, a.pending1)
			if err != nil {
				wantCode(t, err, "42501")
			} else if tag.RowsAffected() != 0 {
				t.Fatalf("changed %d rows", tag.RowsAffected())
			}
		})
	}
	// A receipt it uploaded goes with a pending expense only, not onto one already reviewed.
	receipt := uuid.New()
	ownerExec(t, `INSERT INTO receipts (organization_id, id, employee_id, extension, content_type, status, storage_key, expires_at)
		VALUES ($1, $2, $3, 'png', 'image/png', 'uploaded', 'k', now() + interval '1 hour')`, a.org.ID, receipt, a.e1.ID)
	_, err := execAs(t, c1, `SELECT app.attach_receipt($1, $2, $3, $4)`, a.org.ID, a.e1.ID, receipt, a.approved1)
	wantCode(t, err, "PT400")
	_, err = execAs(t, c1, `SELECT app.attach_receipt($1, $2, $3, $4)`, a.org.ID, a.e2.ID, receipt, a.pending2) // a colleague's
	wantCode(t, err, "PT400")
	// An admin who is also the employee: an admin's privileges, still not over its own expense.
	own := testfactory.AdminClaims(a.org)
	own.EmployeeID = uuid.NullUUID{UUID: a.e1.ID, Valid: true}
	own.UserID = uuid.NullUUID{UUID: a.e1.UserID, Valid: true}
	// Its token may name the employee, or only the user linked to it.
	asUser := testfactory.AdminClaims(a.org)
	asUser.UserID = uuid.NullUUID{UUID: a.e1.UserID, Valid: true}
	for _, c := range []db.Claims{own, asUser} {
		for _, status := range []string{"APPROVED", "REJECTED"} {
			_, err := execAs(t, c, `UPDATE expenses SET status = $2, rejection_comment = 'self', reviewed_at = now() WHERE id = $1`,
				a.pending1, status)
			if pg := wantCode(t, err, "PT403"); pg.Message != "You cannot review your own expense." {
				t.Errorf("message %q", pg.Message)
			}
		}
	}
	_, err = execAs(t, own, `UPDATE expenses SET amount = 1 WHERE id = $1`, a.pending1)
	wantCode(t, err, "42501") // no admin may change what was submitted
	if s := ownerString(t, "SELECT status || ' ' || amount FROM expenses WHERE id = $1", a.pending1); s != "PENDING 12.50" {
		t.Fatalf("the expense is %s after its employee's attempts, want PENDING 12.50", s)
	}
	// The same admin reviews a colleague's.
	tag, err := execAs(t, own, `UPDATE expenses SET status = 'APPROVED', reviewed_at = now() WHERE id = $1`, a.pending2)
	wantRows(t, tag, err, 1)
}

// withoutUser are claims that skip app.check_caller (it checks callers with a user), to show that the
// tables' own rules hold without it.
func withoutUser(c db.Claims) db.Claims {
	c.UserID = uuid.NullUUID{}
	return c
}

// A deactivated employee's token still carries its claims; Postgres refuses its work anyway: the caller
// check refuses every request of it (PT401), and each table's rule its work (PT403).
func TestEmployees_DeactivatedEmployeeCannotWorkUnderItsClaims(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	ownerExec(t, `UPDATE employees SET is_active = false WHERE id = $1`, a.e1.ID)
	if n := ownerInt(t, `SELECT count(*) FROM attendance_sessions WHERE employee_id = $1 AND checkout_at IS NULL`, a.e1.ID); n != 0 {
		t.Fatalf("%d open sessions after deactivation, want 0", n)
	}
	_, err := execAs(t, testfactory.EmployeeClaims(a.e1), `SELECT count(*) FROM expenses`)
	if pg := wantCode(t, err, "PT401"); pg.Hint != "EMPLOYEE_DEACTIVATED" {
		t.Errorf("hint %q", pg.Hint)
	}
	c1 := withoutUser(testfactory.EmployeeClaims(a.e1))
	_, err = execAs(t, c1, `INSERT INTO attendance_sessions (organization_id, employee_id) VALUES ($1, $2)`,
		a.org.ID, a.e1.ID)
	wantCode(t, err, "PT403")
	_, err = execAs(t, c1, `INSERT INTO expenses (organization_id, employee_id, amount, description) VALUES ($1, $2, 1, 'Late')`,
		a.org.ID, a.e1.ID)
	wantCode(t, err, "PT403")
	_, err = execAs(t, c1, `SELECT app.record_location($1, $2, 52.5, 13.4, 5, $3, NULL)`, a.org.ID, a.open1, a.checkin.Add(time.Second))
	wantCode(t, err, "PT403")
	// Its colleague works on.
	n, err := probeAs(t, testfactory.EmployeeClaims(a.e2), `INSERT INTO expenses (organization_id, employee_id, amount, description)
		VALUES ($1, $2, 1, 'Still here')`, a.org.ID, a.e2.ID)
	if err != nil || n != 1 {
		t.Fatalf("an active colleague's expense: %d rows, %v", n, err)
	}
}

// Generated employee codes --------------------------------------------------------------------------------

func TestEmployees_GeneratedCodesCountPerOrganizationAndSkipTakenCodes(t *testing.T) {
	t.Parallel()
	orgA, orgB := testfactory.NewOrg(t), testfactory.NewOrg(t)

	type row struct {
		code   string
		number *int
	}
	insert := func(t *testing.T, org testfactory.Org, code any) (row, error) {
		t.Helper()
		var r row
		err := inTx(t, testfactory.AdminClaims(org), db.TxOptions{}, func(tx db.DBTX) error {
			return tx.QueryRow(t.Context(), `INSERT INTO employees (organization_id, name, employee_code) VALUES ($1, 'E', $2)
				RETURNING employee_code, employee_number`, org.ID, code).Scan(&r.code, &r.number)
		})
		return r, err
	}
	num := func(n int) *int { return &n }
	steps := []struct {
		code       any // nil: generated
		wantCode   string
		wantNumber *int
	}{
		{nil, "EMP0001", num(1)},
		{"", "EMP0002", num(2)}, // blank counts as missing
		{"EMP0003", "EMP0003", num(3)},
		{nil, "EMP0004", num(4)}, // EMP0003 is taken: skipped
		{"X-0042-7", "X-0042-7", num(42)},
		{"ABC", "ABC", nil},
	}
	for _, s := range steps {
		got, err := insert(t, orgA, s.code)
		if err != nil {
			t.Fatalf("insert code %v: %v", s.code, err)
		}
		if got.code != s.wantCode {
			t.Errorf("code %v: employee_code = %q, want %q", s.code, got.code, s.wantCode)
		}
		switch {
		case s.wantNumber == nil && got.number != nil:
			t.Errorf("code %q: employee_number = %d, want NULL", got.code, *got.number)
		case s.wantNumber != nil && (got.number == nil || *got.number != *s.wantNumber):
			t.Errorf("code %q: employee_number = %v, want %d", got.code, got.number, *s.wantNumber)
		}
	}

	// Unique per organization ...
	_, err := insert(t, orgA, "EMP0001")
	if pg := wantCode(t, err, "23505"); pg.ConstraintName != "employees_code_key" {
		t.Errorf("constraint = %q, want employees_code_key", pg.ConstraintName)
	}
	// ... but every organization has its own sequence and may reuse the same code.
	got, err := insert(t, orgB, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.code != "EMP0001" {
		t.Errorf("first generated code of org B = %q, want EMP0001", got.code)
	}
	if _, err := insert(t, orgB, "EMP0003"); err != nil {
		t.Errorf("org B cannot use a code org A uses: %v", err)
	}
	if n := ownerInt(t, "SELECT count(*) FROM employees WHERE employee_code = 'EMP0001' AND organization_id = ANY($1)",
		[]uuid.UUID{orgA.ID, orgB.ID}); n != 2 {
		t.Errorf("EMP0001 exists %d times across A and B, want 2", n)
	}
}

// InTx ----------------------------------------------------------------------------------------------------

func TestInTx_ReadOnlyRefusesWrites(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	err := inTx(t, testfactory.AdminClaims(a.org), db.TxOptions{ReadOnly: true}, func(tx db.DBTX) error {
		var n int
		if err := tx.QueryRow(t.Context(), "SELECT count(*) FROM employees").Scan(&n); err != nil {
			return fmt.Errorf("read in a read-only transaction: %w", err)
		}
		if n != 3 {
			t.Errorf("read-only admin sees %d employees, want 3", n)
		}
		_, err := tx.Exec(t.Context(), `UPDATE employees SET name = 'RO' WHERE organization_id = $1`, a.org.ID)
		return err
	})
	wantCode(t, err, "25006")
	if n := ownerInt(t, "SELECT count(*) FROM employees WHERE organization_id = $1 AND name = 'RO'", a.org.ID); n != 0 {
		t.Fatalf("%d rows written in a read-only transaction", n)
	}
}

func TestInTx_ClaimsReachSQLVerbatim(t *testing.T) {
	t.Parallel()
	orgID, userID, empID := uuid.New(), uuid.New(), uuid.New()
	jwt, err := json.Marshal(map[string]any{
		"sub":         userID.String(),
		"email":       "o'brien@example.test",
		"note":        `back\slash and 'quotes'; SELECT 1 --`,
		"role":        "EMPLOYEE",
		"org_id":      orgID.String(),
		"employee_id": empID.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := db.Claims{
		OrgID:      orgID,
		UserID:     uuid.NullUUID{UUID: userID, Valid: true},
		Role:       "EMPLOYEE",
		EmployeeID: uuid.NullUUID{UUID: empID, Valid: true},
		JWT:        jwt,
	}
	err = inTx(t, c, db.TxOptions{ReadOnly: true}, func(tx db.DBTX) error {
		var (
			gotOrg, gotUser, gotEmp uuid.UUID
			gotRole, rawJWT, email  string
			user                    string
			sameJSON                bool
		)
		err := tx.QueryRow(t.Context(), `SELECT app.org_id(), app.user_id(), app.employee_id(), app.role(),
				current_setting('request.jwt.claims'), current_setting('request.jwt.claims')::jsonb ->> 'email',
				current_setting('request.jwt.claims')::jsonb = $1::jsonb, current_user::text`, string(jwt)).
			Scan(&gotOrg, &gotUser, &gotEmp, &gotRole, &rawJWT, &email, &sameJSON, &user)
		if err != nil {
			return err
		}
		if gotOrg != orgID || gotUser != userID || gotEmp != empID || gotRole != "EMPLOYEE" {
			t.Errorf("claims in SQL: org %s user %s employee %s role %q; want %s %s %s EMPLOYEE",
				gotOrg, gotUser, gotEmp, gotRole, orgID, userID, empID)
		}
		if rawJWT != string(jwt) {
			t.Errorf("request.jwt.claims = %s, want %s", rawJWT, jwt)
		}
		if !sameJSON {
			t.Errorf("request.jwt.claims as jsonb differs from the given claims")
		}
		if email != "o'brien@example.test" {
			t.Errorf("email claim = %q, want o'brien@example.test", email)
		}
		if user != db.APIRole {
			t.Errorf("current_user = %q, want %q", user, db.APIRole)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Absent optional claims read as NULL, not as an empty string or a nil uuid.
	err = inTx(t, db.Claims{OrgID: orgID, Role: "ADMIN"}, db.TxOptions{ReadOnly: true}, func(tx db.DBTX) error {
		var userNull, empNull bool
		if err := tx.QueryRow(t.Context(), `SELECT app.user_id() IS NULL, app.employee_id() IS NULL`).Scan(&userNull, &empNull); err != nil {
			return err
		}
		if !userNull || !empNull {
			t.Errorf("missing user/employee claims: user_id IS NULL %v, employee_id IS NULL %v; want both true", userNull, empNull)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestInTx_RefusesClaimsWithNULBytes(t *testing.T) {
	t.Parallel()
	var role string
	err := inTx(t, db.Claims{OrgID: uuid.New(), Role: "ADMIN\x00; RESET ROLE"}, db.TxOptions{}, func(tx db.DBTX) error {
		return tx.QueryRow(t.Context(), "SELECT current_user").Scan(&role)
	})
	// Claims travel as parameters, so a NUL byte cannot change the statement; Postgres refuses the value,
	// and no statement runs under claims that were not set.
	if err == nil {
		t.Fatalf("InTx accepted a claim with a NUL byte (a statement ran as %q)", role)
	}
}

// A transaction's first statement travels with BEGIN and the claims; statements of every kind still see
// the claims, errors surface on the statement, and a transaction that ran nothing commits without a trip.
func TestInTx_FirstStatementCarriesTheClaims(t *testing.T) {
	t.Parallel()
	org := testfactory.NewOrg(t)
	claims := testfactory.AdminClaims(org)
	check := func(name string, fn func(db.DBTX) (string, error)) {
		t.Helper()
		var got string
		err := inTx(t, claims, db.TxOptions{}, func(tx db.DBTX) (err error) {
			got, err = fn(tx)
			return err
		})
		if err != nil || got != org.ID.String() {
			t.Fatalf("%s: org %q, err %v; want %s", name, got, err, org.ID)
		}
	}
	check("QueryRow", func(tx db.DBTX) (string, error) {
		var s string
		return s, tx.QueryRow(t.Context(), "SELECT app.org_id()::text").Scan(&s)
	})
	check("Query", func(tx db.DBTX) (string, error) {
		rows, err := tx.Query(t.Context(), "SELECT app.org_id()::text FROM generate_series(1, 3)")
		if err != nil {
			return "", err
		}
		var s string
		n := 0
		for rows.Next() {
			if err := rows.Scan(&s); err != nil {
				return "", err
			}
			n++
		}
		if rows.Err() != nil || n != 3 {
			return "", fmt.Errorf("rows %d, err %v", n, rows.Err())
		}
		return s, nil
	})
	check("Exec then QueryRow", func(tx db.DBTX) (string, error) {
		if _, err := tx.Exec(t.Context(), "SELECT set_config('app.probe', app.org_id()::text, true)"); err != nil {
			return "", err
		}
		var s string
		return s, tx.QueryRow(t.Context(), "SELECT current_setting('app.probe')").Scan(&s)
	})
	err := inTx(t, claims, db.TxOptions{}, func(tx db.DBTX) error {
		var n int
		return tx.QueryRow(t.Context(), "SELECT 1 FROM organizations WHERE false").Scan(&n)
	})
	if !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("QueryRow without a row as the first statement: %v, want pgx.ErrNoRows", err)
	}
	err = inTx(t, claims, db.TxOptions{}, func(tx db.DBTX) error {
		_, err := tx.Exec(t.Context(), "SELECT 1/0")
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "22012" {
		t.Fatalf("a failing first statement: %v, want its own error (22012)", err)
	}
	if err := inTx(t, claims, db.TxOptions{}, func(db.DBTX) error { return nil }); err != nil {
		t.Fatalf("an empty transaction: %v", err)
	}
}

// onePool is a dedicated pool with a single connection, so consecutive uses hit the same backend.
func onePool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := db.NewPool(t.Context(), db.PoolConfig{URL: testfactory.URL(t), MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestInTx_SettingsDoNotOutliveTheTransaction(t *testing.T) {
	t.Parallel()
	pool := onePool(t)
	a := newTenant(t)

	type state struct {
		pid                 int32
		user, timeout       string
		orgID, role, claims *string
		sessionUser         string
	}
	read := func(q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) state {
		t.Helper()
		var s state
		err := q.QueryRow(t.Context(), `SELECT pg_backend_pid(), current_user::text, session_user::text,
				current_setting('statement_timeout'), current_setting('app.org_id', true), current_setting('app.role', true),
				current_setting('request.jwt.claims', true)`).
			Scan(&s.pid, &s.user, &s.sessionUser, &s.timeout, &s.orgID, &s.role, &s.claims)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	empty := func(p *string) bool { return p == nil || *p == "" }

	before := read(pool)
	if before.user == db.APIRole {
		t.Fatalf("fixture: the pool logs in as %s; it must log in as another role", db.APIRole)
	}

	var inside state
	err := db.InTx(t.Context(), pool, testfactory.AdminClaims(a.org), db.TxOptions{StatementTimeout: 1234 * time.Millisecond},
		func(tx db.DBTX) error {
			inside = read(tx)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if inside.user != db.APIRole || inside.orgID == nil || *inside.orgID != a.org.ID.String() || inside.timeout != "1234ms" {
		t.Fatalf("inside InTx: user %q org %v timeout %q; want %s, %s, 1234ms (settings were not applied)",
			inside.user, inside.orgID, inside.timeout, db.APIRole, a.org.ID)
	}

	after := read(pool)
	if after.pid != inside.pid {
		t.Fatalf("the query after InTx ran on backend %d, InTx on %d; want the same connection", after.pid, inside.pid)
	}
	if after.user != before.sessionUser {
		t.Errorf("current_user after InTx = %q, want the login role %q", after.user, before.sessionUser)
	}
	if !empty(after.orgID) || !empty(after.role) || !empty(after.claims) {
		t.Errorf("claims leaked past the transaction: app.org_id %v, app.role %v, request.jwt.claims %v",
			deref(after.orgID), deref(after.role), deref(after.claims))
	}
	if after.timeout != before.timeout {
		t.Errorf("statement_timeout after InTx = %q, want the server default %q", after.timeout, before.timeout)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

func TestInTx_ErrorFromFnRollsBackAndIsReturnedUnchanged(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	sentinel := errors.New("handler failed")
	inserted := false
	var id uuid.UUID
	err := inTx(t, testfactory.AdminClaims(a.org), db.TxOptions{}, func(tx db.DBTX) error {
		if err := tx.QueryRow(t.Context(), `INSERT INTO employees (organization_id, name) VALUES ($1, 'Ghost')
			RETURNING id`, a.org.ID).Scan(&id); err != nil {
			return err
		}
		inserted = true
		return sentinel
	})
	if !inserted {
		t.Fatalf("the insert inside fn failed: %v", err)
	}
	if err != sentinel { // InTx promises fn's error unchanged, not merely wrapped

		t.Fatalf("InTx = %v, want fn's error unchanged", err)
	}
	if n := ownerInt(t, "SELECT count(*) FROM employees WHERE id = $1", id); n != 0 {
		t.Fatalf("the row inserted by a failed fn is present (%d rows): no rollback", n)
	}

	if n := ownerInt(t, "SELECT count(*) FROM employees WHERE organization_id = $1 AND name = 'Ghost'", a.org.ID); n != 0 {
		t.Fatalf("%d rows named Ghost after the rollback, want 0", n)
	}

	// The same insert with fn succeeding is committed: the absence above was the rollback.
	if err := inTx(t, testfactory.AdminClaims(a.org), db.TxOptions{}, func(tx db.DBTX) error {
		return tx.QueryRow(t.Context(), `INSERT INTO employees (organization_id, name) VALUES ($1, 'Ghost')
			RETURNING id`, a.org.ID).Scan(&id)
	}); err != nil {
		t.Fatal(err)
	}
	if n := ownerInt(t, "SELECT count(*) FROM employees WHERE id = $1", id); n != 1 {
		t.Fatalf("committed insert: %d rows, want 1", n)
	}
}

func TestInTx_StatementTimeoutCancelsSlowStatements(t *testing.T) {
	t.Parallel()
	err := inTx(t, db.Claims{}, db.TxOptions{StatementTimeout: 50 * time.Millisecond}, func(tx db.DBTX) error {
		if _, err := tx.Exec(t.Context(), "SELECT pg_sleep(0)"); err != nil {
			return fmt.Errorf("a fast statement failed under the timeout: %w", err)
		}
		_, err := tx.Exec(t.Context(), "SELECT pg_sleep(1)")
		return err
	})
	wantCode(t, err, "57014")
}

func TestInTx_AcquireTimeoutReportsUnavailable(t *testing.T) {
	t.Parallel()
	pool := onePool(t)
	held, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	called := false
	err = db.InTx(t.Context(), pool, db.Claims{}, db.TxOptions{AcquireTimeout: 100 * time.Millisecond}, func(db.DBTX) error {
		called = true
		return nil
	})
	if !errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("InTx with the only connection held = %v, want an error wrapping db.ErrUnavailable", err)
	}
	if called {
		t.Fatal("fn ran without a connection")
	}
}

func TestInTx_CancelledRequestIsNotReportedAsUnavailable(t *testing.T) {
	t.Parallel()
	pool := onePool(t)
	held, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = db.InTx(ctx, pool, db.Claims{}, db.TxOptions{AcquireTimeout: time.Minute}, func(db.DBTX) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("InTx with a cancelled context = %v, want context.Canceled", err)
	}
	if errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("a cancelled request was reported as database unavailable: %v", err)
	}
}

// The functions that run as the owner (to write what the API role may not) cannot be turned against other
// rows by a caller with SQL access as the API role: the measurement takes no call at all, the others apply
// the tenant rule themselves, and events come only from the changes that cause them.
func TestDefinerFunctions_RefuseForgedCalls(t *testing.T) {
	t.Parallel()
	a, b := newTenant(t), newTenant(t)
	summary := func(org uuid.UUID, session uuid.UUID) (at time.Time) {
		t.Helper()
		if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT computed_at FROM session_summaries
			WHERE organization_id = $1 AND session_id = $2`, org, session).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	theirs, colleague := summary(b.org.ID, b.closed1), summary(a.org.ID, a.closed2)
	forge := func(org, session, employee uuid.UUID) string {
		return fmt.Sprintf(`SELECT app.measure_session(ROW('%s', '%s', '%s', now() - interval '1 hour', now(),
			'pending', NULL, NULL, now(), now())::attendance_sessions, true)`, org, session, employee)
	}
	employee, admin := testfactory.EmployeeClaims(a.e1), testfactory.AdminClaims(a.org)
	for _, c := range []struct {
		name  string
		as    db.Claims
		sql   string
		codes []string
	}{
		{"measure another organization's session", employee, forge(b.org.ID, b.closed1, b.e1.ID), []string{"42501"}},
		{"measure a colleague's session under one's own id", employee, forge(a.org.ID, a.closed2, a.e1.ID), []string{"42501"}},
		{"recalculate another organization's session", admin,
			fmt.Sprintf(`SELECT app.recalculate_session('%s', '%s')`, b.org.ID, b.closed1), []string{"PT404"}},
		{"recalculate a colleague's session", employee,
			fmt.Sprintf(`SELECT app.recalculate_session('%s', '%s')`, a.org.ID, a.closed2), []string{"PT404"}},
		{"emit an event in SQL", employee,
			fmt.Sprintf(`SELECT app.emit('%s', 'expense.approved', '{}', 'expense.status', '{}')`, a.org.ID), []string{"42501"}},
		{"emit an event for another organization", admin,
			fmt.Sprintf(`SELECT app.emit('%s', 'employee.created', '{}')`, b.org.ID), []string{"42501"}},
		{"test a webhook as an employee", employee,
			fmt.Sprintf(`SELECT app.emit_webhook_test('%s', '%s')`, a.org.ID, uuid.New()), []string{"42501"}},
		{"test another organization's webhook", admin,
			fmt.Sprintf(`SELECT app.emit_webhook_test('%s', '%s')`, b.org.ID, uuid.New()), []string{"42501"}},
	} {
		_, err := execAs(t, c.as, c.sql)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || !slices.Contains(c.codes, pg.Code) {
			t.Errorf("%s: err %v, want SQLSTATE %v", c.name, err, c.codes)
		}
	}
	if at := summary(b.org.ID, b.closed1); !at.Equal(theirs) {
		t.Errorf("the other organization's session summary was rewritten at %v (was %v)", at, theirs)
	}
	if at := summary(a.org.ID, a.closed2); !at.Equal(colleague) {
		t.Errorf("the colleague's session summary was rewritten at %v (was %v)", at, colleague)
	}
	var events int
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT count(*) FROM webhook_events
		WHERE organization_id IN ($1, $2) AND event_type IN ('expense.approved', 'webhook.test')`,
		a.org.ID, b.org.ID).Scan(&events); err != nil || events != 0 {
		t.Fatalf("forged events stored: %d (err %v)", events, err)
	}
}

// Built-in identity's secrets: neither a request (fieldtrack_api) nor background work can read them, or
// call the functions that do.
func TestIdentity_SecretsAreOutOfReachOfTheAPIAndWorkerRoles(t *testing.T) {
	t.Parallel()
	a := newTenant(t)
	for _, c := range []struct {
		who  string
		role string
		c    db.Claims
	}{{"an admin's request", db.APIRole, testfactory.AdminClaims(a.org)}, {"background work", db.WorkerRole, db.Claims{}}} {
		for _, sql := range []string{
			`SELECT private_key FROM app.signing_keys`,
			`SELECT password_hash FROM app.user_passwords`,
			`SELECT token_hash FROM app.refresh_tokens`,
			`SELECT key FROM app.refresh_token_key`,
			`SELECT id FROM app.auth_sessions`,
			`SELECT * FROM app.auth_account_by_email('` + a.e1.UserID.String() + `@example.test')`,
			`SELECT * FROM app.auth_refresh('x', 60, 10)`,
		} {
			err := inTx(t, c.c, db.TxOptions{Role: c.role}, func(tx db.DBTX) error {
				_, err := tx.Exec(t.Context(), sql)
				return err
			})
			if pg := wantCode(t, err, "42501"); t.Failed() {
				t.Fatalf("%s ran %s (%v)", c.who, sql, pg)
			}
		}
	}
}

// The definer functions search pg_temp last: a temporary table of the API role named like a table they
// read does not change what they see.
func TestTemporaryTables_AreRefusedToTheRequestRoles(t *testing.T) {
	t.Parallel()
	org := testfactory.NewOrg(t)
	err := inTx(t, testfactory.AdminClaims(org), db.TxOptions{}, func(tx db.DBTX) error {
		_, err := tx.Exec(t.Context(), `CREATE TEMP TABLE webhook_events (id uuid) ON COMMIT DROP`)
		return err
	})
	wantCode(t, err, "42501")
}

// The review's attack: a session that runs SQL as (a member of) fieldtrack_api and may create temporary
// tables shadows webhook_events with one whose trigger records who runs it, then checks in: the check-in's
// event is written by SECURITY DEFINER functions. They must write the real outbox and never run the
// trigger (which would run as their owner).
func TestDefinerFunctions_AreNotFooledByTemporaryTables(t *testing.T) {
	t.Parallel()
	owner := testfactory.Pool(t)
	ctx := t.Context()
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Shadow")
	attacker := "ft_attacker_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	var database string
	if err := owner.QueryRow(ctx, `SELECT current_database()`).Scan(&database); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE ROLE ` + attacker + ` NOLOGIN IN ROLE fieldtrack_api`,
		`GRANT TEMPORARY ON DATABASE ` + pgx.Identifier{database}.Sanitize() + ` TO ` + attacker,
	} {
		if _, err := owner.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{
			`REVOKE TEMPORARY ON DATABASE ` + pgx.Identifier{database}.Sanitize() + ` FROM ` + attacker,
			`DROP ROLE ` + attacker,
		} {
			if _, err := owner.Exec(context.Background(), q); err != nil {
				t.Error(err)
			}
		}
	})

	var ran []string
	var events int
	err := inTx(t, testfactory.EmployeeClaims(emp), db.TxOptions{Role: attacker}, func(tx db.DBTX) error {
		for _, q := range []string{
			`CREATE TEMP TABLE ran (who text) ON COMMIT DROP`,
			`CREATE TEMP TABLE webhook_events (LIKE public.webhook_events) ON COMMIT DROP`,
			`CREATE FUNCTION pg_temp.record() RETURNS trigger LANGUAGE plpgsql AS
				$f$ BEGIN INSERT INTO pg_temp.ran VALUES (current_user); RETURN NEW; END $f$`,
			`CREATE TRIGGER record BEFORE INSERT ON pg_temp.webhook_events FOR EACH ROW EXECUTE FUNCTION pg_temp.record()`,
			`INSERT INTO attendance_sessions (organization_id, employee_id) VALUES ('` + org.ID.String() + `', '` + emp.ID.String() + `')`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		rows, err := tx.Query(ctx, `SELECT who FROM pg_temp.ran`)
		if err != nil {
			return err
		}
		ran, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_temp.webhook_events`).Scan(&events); err != nil {
			return err
		}
		// The pooled connection keeps temporary functions past the transaction: none may outlive it.
		_, err = tx.Exec(ctx, `DROP FUNCTION pg_temp.record() CASCADE`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ran) > 0 || events > 0 {
		t.Fatalf("the temporary table was written by a definer function (trigger ran as %v; %d rows)", ran, events)
	}
	var real int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM webhook_events WHERE organization_id = $1 AND event_type = 'session.checkin'`,
		org.ID).Scan(&real); err != nil || real != 1 {
		t.Fatalf("check-in events in the real outbox: %d (%v), want 1", real, err)
	}
}

// Every SECURITY DEFINER function of ours searches pg_temp last and is owned by a role that is not a
// superuser: a later migration that forgets either fails here.
func TestDefinerFunctions_PinASafeSearchPathAndAreNotOwnedByASuperuser(t *testing.T) {
	t.Parallel()
	rows, err := testfactory.Pool(t).Query(t.Context(), `
		SELECT p.oid::regprocedure::text, r.rolsuper, coalesce((SELECT c FROM unnest(p.proconfig) c
		       WHERE c LIKE 'search_path=%'), '')
		  FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
		 WHERE p.prosecdef AND p.pronamespace IN ('app'::regnamespace, 'public'::regnamespace)
		   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
		                     AND d.deptype = 'e')`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var fn, path string
		var super bool
		if err := rows.Scan(&fn, &super, &path); err != nil {
			t.Fatal(err)
		}
		n++
		if super {
			t.Errorf("%s is owned by a superuser", fn)
		}
		if !strings.HasSuffix(path, ", pg_temp") {
			t.Errorf("%s: %q, want a search_path ending in pg_temp", fn, path)
		}
	}
	if rows.Err() != nil || n < 20 {
		t.Fatalf("%d definer functions found (%v)", n, rows.Err())
	}
}
