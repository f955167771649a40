package httpapi

import (
	"errors"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// authMe answers who the caller is, from its verified claims (once the database has checked that the
// caller may still act).
func (s *Server) authMe(w http.ResponseWriter, r *http.Request) error {
	if err := s.callerActive(r); err != nil {
		return err
	}
	id := identityOf(r)
	me := map[string]any{"id": id.Subject, "role": id.Role, "orgId": id.OrgID}
	if id.Email != "" {
		me["email"] = id.Email
	}
	return respond(w, http.StatusOK, me)
}

// employeeFile is an employee with its latest session's state, its totals and, for the admin's view,
// its latest sessions and expenses.
type employeeFile struct {
	state    db.AppEmployeeState
	totals   db.EmployeeTotalsRow
	sessions []db.EmployeeRecentSessionsRow
	expenses []db.EmployeeRecentExpensesRow
}

// readEmployee reads an employee's file in one transaction (withRecent: its ten latest sessions and
// expenses too); pgx.ErrNoRows when the caller cannot see the employee.
func (s *Server) readEmployee(r *http.Request, employee uuid.UUID, withRecent bool) (f employeeFile, err error) {
	org := identityOf(r).OrgID
	err = s.tx(r, func(tx db.DBTX) (err error) {
		ctx := r.Context()
		if f.state, err = s.q.EmployeeState(ctx, tx, db.EmployeeStateParams{OrgID: org, ID: employee}); err != nil {
			return err
		}
		if f.totals, err = s.q.EmployeeTotals(ctx, tx, db.EmployeeTotalsParams{OrgID: org, EmployeeID: employee}); err != nil {
			return err
		}
		if !withRecent {
			return nil
		}
		if f.sessions, err = s.q.EmployeeRecentSessions(ctx, tx, db.EmployeeRecentSessionsParams{OrgID: org, EmployeeID: employee}); err != nil {
			return err
		}
		f.expenses, err = s.q.EmployeeRecentExpenses(ctx, tx, db.EmployeeRecentExpensesParams{OrgID: org, EmployeeID: employee})
		return err
	})
	return f, err
}

// profileMe is the calling employee's profile; callers without an employee (admins) have none.
func (s *Server) profileMe(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	if !id.EmployeeID.Valid {
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": nil, "meta": map[string]bool{"hasProfile": false}})
		return nil
	}
	f, err := s.readEmployee(r, id.EmployeeID.UUID, false)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Employee not found")
	}
	if err != nil {
		return err
	}
	e := f.state
	return respond(w, http.StatusOK, map[string]any{
		"id": e.ID, "name": e.Name, "employee_code": e.EmployeeCode, "phone": e.Phone, "is_active": e.IsActive,
		"activityStatus": e.ActivityStatus, "last_activity_at": e.LastActivityAt, "created_at": e.CreatedAt,
		"stats": f.totals,
	})
}

// employeeProfile is an employee's file for an admin.
func (s *Server) employeeProfile(w http.ResponseWriter, r *http.Request) error {
	f, err := s.readEmployee(r, pathUUID(r, "id"), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Employee not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, map[string]any{
		"employee": f.state, "summary": f.totals, "recentSessions": f.sessions, "expenses": f.expenses,
	})
}

// mySummary is the calling employee's week; callers without an employee get zeros.
func (s *Server) mySummary(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	if !id.EmployeeID.Valid {
		return respond(w, http.StatusOK, db.EmployeeWeekRow{})
	}
	week, err := one(s, r, s.q.EmployeeWeek, db.EmployeeWeekParams{OrgID: id.OrgID, EmployeeID: id.EmployeeID.UUID})
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, week)
}
