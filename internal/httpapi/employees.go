package httpapi

import (
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
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Employee not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, emp)
}
