package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

type createEmployeeBody struct {
	Name         string     `json:"name"`
	EmployeeCode *string    `json:"employee_code"`
	UserID       *uuid.UUID `json:"user_id"`
	Phone        *string    `json:"phone"`
}

func (s *Server) createEmployee(w http.ResponseWriter, r *http.Request) error {
	var body createEmployeeBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	emp, err := one(s, r, s.q.EmployeeCreate, db.EmployeeCreateParams{OrgID: identityOf(r).OrgID,
		Name: body.Name, EmployeeCode: body.EmployeeCode, UserID: body.UserID, Phone: body.Phone})
	if err != nil {
		return err
	}
	return respond(w, http.StatusCreated, emp)
}

func (s *Server) getEmployee(w http.ResponseWriter, r *http.Request) error {
	emp, err := one(s, r, s.q.EmployeeGet, db.EmployeeGetParams{OrgID: identityOf(r).OrgID, ID: pathUUID(r, "id")})
	return respondEmployee(w, emp, err)
}

// respondEmployee answers an employee, or 404 when the query found none.
func respondEmployee(w http.ResponseWriter, emp db.Employee, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Employee not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, emp)
}

// listEmployees pages the organization's employees with their latest session's state (search, segment
// and active filters as the dashboard sends them).
func (s *Server) listEmployees(w http.ResponseWriter, r *http.Request) error {
	org := identityOf(r).OrgID
	search, segment := queryString(r, "search"), queryString(r, "segment")
	var active *bool
	if v := r.URL.Query().Get("active"); v != "" {
		b := v == "true"
		active = &b
	}
	return respondList(s, w, r, 50, func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]db.EmployeeListRow, error) {
		return s.q.EmployeeList(ctx, tx, db.EmployeeListParams{OrgID: org, Search: search, IsActive: active,
			Segment: segment, RowLimit: limit, RowOffset: offset})
	})
}

// updateEmployee changes name and phone (a phone of null clears it); an empty body only moves updated_at.
func (s *Server) updateEmployee(w http.ResponseWriter, r *http.Request) error {
	var body map[string]json.RawMessage
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	p := db.EmployeeUpdateParams{OrgID: identityOf(r).OrgID, ID: pathUUID(r, "id")}
	if raw, ok := body["name"]; ok {
		if err := json.Unmarshal(raw, &p.Name); err != nil {
			return errInvalid("Invalid JSON body", nil)
		}
	}
	if raw, ok := body["phone"]; ok {
		p.SetPhone = true
		if err := json.Unmarshal(raw, &p.Phone); err != nil {
			return errInvalid("Invalid JSON body", nil)
		}
	}
	emp, err := one(s, r, s.q.EmployeeUpdate, p)
	return respondEmployee(w, emp, err)
}

type employeeStatusBody struct {
	IsActive bool `json:"is_active"`
}

// setEmployeeStatus activates or deactivates an employee. Deactivation checks out its open session (with
// its distance and events) and, from then on, Postgres refuses its check-ins, fixes and expenses whatever
// token it holds.
func (s *Server) setEmployeeStatus(w http.ResponseWriter, r *http.Request) error {
	var body employeeStatusBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	emp, err := one(s, r, s.q.EmployeeSetActive, db.EmployeeSetActiveParams{
		OrgID: identityOf(r).OrgID, ID: pathUUID(r, "id"), IsActive: body.IsActive})
	return respondEmployee(w, emp, err)
}

// search finds employees (name or code) and expenses (description) containing q, any case.
func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	org, q, limit := identityOf(r).OrgID, r.URL.Query().Get("q"), int32(queryInt(r, "limit", 10))
	var out struct {
		Employees []db.SearchEmployeesRow `json:"employees"`
		Expenses  []db.SearchExpensesRow  `json:"expenses"`
	}
	err := s.tx(r, func(tx db.DBTX) (err error) {
		if out.Employees, err = s.q.SearchEmployees(r.Context(), tx, db.SearchEmployeesParams{OrgID: org, Q: q, MaxRows: limit}); err != nil {
			return err
		}
		out.Expenses, err = s.q.SearchExpenses(r.Context(), tx, db.SearchExpensesParams{OrgID: org, Q: q, MaxRows: limit})
		return err
	})
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, out)
}
