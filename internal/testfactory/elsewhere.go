package testfactory

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// NewOrgIn is NewOrg in another database than DATABASE_URL (a test's private cluster), through p, a pool
// that logs in as the owner.
func NewOrgIn(t testing.TB, p *pgxpool.Pool) Org {
	t.Helper()
	o := Org{ID: uuid.New(), AdminUserID: uuid.New()}
	exec(t, p, `INSERT INTO organizations (id, name) VALUES ($1, $2)`, o.ID, "Org "+o.ID.String()[:8])
	exec(t, p, `INSERT INTO users (organization_id, id, email, role) VALUES ($1, $2, $3, 'ADMIN')`,
		o.ID, o.AdminUserID, "admin-"+o.AdminUserID.String()+"@example.test")
	return o
}

// NewEmployeeIn is NewEmployee through p (see NewOrgIn).
func NewEmployeeIn(t testing.TB, p *pgxpool.Pool, org Org, name string) Employee {
	t.Helper()
	e := Employee{OrgID: org.ID, ID: uuid.New(), UserID: uuid.New(), Name: name}
	exec(t, p, `INSERT INTO users (organization_id, id, email, role) VALUES ($1, $2, $3, 'EMPLOYEE')`,
		org.ID, e.UserID, "emp-"+e.UserID.String()+"@example.test")
	err := p.QueryRow(context.Background(),
		`INSERT INTO employees (organization_id, id, user_id, name) VALUES ($1, $2, $3, $4) RETURNING employee_code`,
		org.ID, e.ID, e.UserID, name).Scan(&e.Code)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
