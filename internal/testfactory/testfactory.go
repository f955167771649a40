// Package testfactory creates fixtures for tests on the real database: organizations, people, sessions
// and tokens. Fixtures are committed, each in a fresh organization, so tests isolate themselves through
// the very tenant boundary they test and can run in parallel.
package testfactory

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// Secret signs the tokens tests mint; servers under test are configured with it.
const Secret = "testfactory-secret-0123456789abcdef"

var (
	poolOnce sync.Once
	pool     *pgxpool.Pool
	poolErr  error
)

// URL returns DATABASE_URL, failing the test when it is unset: tests need the real database that
// `make test` starts, and a test that silently skips proves nothing.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Fatal("DATABASE_URL is not set: run the tests with `make test`, which starts a throwaway cluster")
	}
	return u
}

// Pool returns a process-wide pool on DATABASE_URL. It logs in as the owner, so fixtures written through
// it bypass row-level security; requests switch to fieldtrack_api through db.InTx.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := URL(t)
	poolOnce.Do(func() {
		pool, poolErr = db.NewPool(context.Background(), db.PoolConfig{URL: url, MaxConns: 40})
	})
	if poolErr != nil {
		t.Fatal(poolErr)
	}
	return pool
}

// Org is a fresh organization with one admin user.
type Org struct {
	ID          uuid.UUID
	AdminUserID uuid.UUID
}

// Employee is an employee with a linked user.
type Employee struct {
	OrgID  uuid.UUID
	ID     uuid.UUID
	UserID uuid.UUID
	Code   string
	Name   string
}

// NewOrg creates an organization and its admin user.
func NewOrg(t testing.TB) Org {
	t.Helper()
	return NewOrgIn(t, Pool(t))
}

// NewEmployee creates an active employee of org with a linked user; its code is generated.
func NewEmployee(t testing.TB, org Org, name string) Employee {
	t.Helper()
	return NewEmployeeIn(t, Pool(t), org, name)
}

// ClosedSession stores a finished session of e directly (as history would be) and returns its id.
func ClosedSession(t testing.TB, e Employee, checkin, checkout time.Time) uuid.UUID {
	t.Helper()
	id := uuid.New()
	exec(t, Pool(t), `INSERT INTO attendance_sessions (organization_id, id, employee_id, checkin_at, checkout_at)
		VALUES ($1, $2, $3, $4, $5)`, e.OrgID, id, e.ID, checkin, checkout)
	return id
}

// OpenSession stores an open session of e checked in at checkin and returns its id.
func OpenSession(t testing.TB, e Employee, checkin time.Time) uuid.UUID {
	t.Helper()
	id := uuid.New()
	exec(t, Pool(t), `INSERT INTO attendance_sessions (organization_id, id, employee_id, checkin_at)
		VALUES ($1, $2, $3, $4)`, e.OrgID, id, e.ID, checkin)
	return id
}

// AdminToken mints a valid ADMIN token for org.
func AdminToken(t testing.TB, org Org) string {
	t.Helper()
	return mint(t, auth.MintOptions{Subject: org.AdminUserID.String(), Role: auth.RoleAdmin, OrgID: org.ID})
}

// EmployeeToken mints a valid EMPLOYEE token for e.
func EmployeeToken(t testing.TB, e Employee) string {
	t.Helper()
	return mint(t, auth.MintOptions{Subject: e.UserID.String(), Role: auth.RoleEmployee, OrgID: e.OrgID,
		EmployeeID: uuid.NullUUID{UUID: e.ID, Valid: true}})
}

func mint(t testing.TB, o auth.MintOptions) string {
	t.Helper()
	tok, err := auth.Mint([]byte(Secret), o)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// AdminClaims and EmployeeClaims are the db.Claims a request of that caller runs under.
func AdminClaims(org Org) db.Claims {
	return db.Claims{OrgID: org.ID, UserID: uuid.NullUUID{UUID: org.AdminUserID, Valid: true}, Role: "ADMIN",
		JWT: []byte(fmt.Sprintf(`{"sub":%q,"role":"ADMIN","org_id":%q}`, org.AdminUserID, org.ID))}
}

// EmployeeClaims: see AdminClaims.
func EmployeeClaims(e Employee) db.Claims {
	return db.Claims{OrgID: e.OrgID, UserID: uuid.NullUUID{UUID: e.UserID, Valid: true}, Role: "EMPLOYEE",
		EmployeeID: uuid.NullUUID{UUID: e.ID, Valid: true},
		JWT:        []byte(fmt.Sprintf(`{"sub":%q,"role":"EMPLOYEE","org_id":%q,"employee_id":%q}`, e.UserID, e.OrgID, e.ID))}
}

func exec(t testing.TB, p *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := p.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("fixture %q: %v", sql, err)
	}
}
