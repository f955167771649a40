package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
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
	var emp db.Employee
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		emp, err = s.q.EmployeeCreate(r.Context(), tx, db.EmployeeCreateParams{
			Name: body.Name, EmployeeCode: body.EmployeeCode, UserID: body.UserID, Phone: body.Phone,
		})
		return err
	})
	if err != nil {
		return err
	}
	return respond(w, http.StatusCreated, emp)
}

func (s *Server) getEmployee(w http.ResponseWriter, r *http.Request) error {
	id := uuid.MustParse(chi.URLParam(r, "id")) // validated as a UUID by the OpenAPI document
	var emp db.Employee
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		emp, err = s.q.EmployeeGet(r.Context(), tx, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Employee not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, emp)
}

// decodeBody decodes a JSON body that already passed validation; unknown fields are ignored.
func decodeBody(r *http.Request, dst any) error {
	if err := json.NewDecoder(r.Body).Decode(dst); err != nil {
		return errInvalid("Invalid JSON body", nil)
	}
	return nil
}
