package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// sessionItem is a session as lists show it: with the employee's code and name and its activity status.
type sessionItem = db.SessionListForEmployeeRow

func (s *Server) checkIn(w http.ResponseWriter, r *http.Request) error {
	var sess db.AttendanceSession
	err := s.txOne(r, func(tx pgx.Tx) (err error) {
		sess, err = s.q.SessionCheckIn(r.Context(), tx)
		return err
	})
	if err != nil {
		return err
	}
	return respond(w, http.StatusCreated, sess)
}

func (s *Server) checkOut(w http.ResponseWriter, r *http.Request) error {
	var sess db.AttendanceSession
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		if sess, err = s.q.SessionCheckOut(r.Context(), tx); err != nil {
			return err
		}
		// RETURNING shows the row before the check-out trigger computed the distance: read it again.
		sess, err = s.q.SessionGet(r.Context(), tx, sess.ID)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errInvalid("Cannot check out: no active session found. Check in first.", nil)
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, sess)
}

// mySessions lists the caller's sessions; callers without an employee (admins) get an empty page.
func (s *Server) mySessions(w http.ResponseWriter, r *http.Request) error {
	p := pageOf(r, 20)
	id := identityOf(r)
	if !id.EmployeeID.Valid {
		return respondPage(w, []sessionItem{}, p, 0)
	}
	items, total, err := s.employeeSessions(r, id.EmployeeID.UUID, sessionStatus(r), p)
	if err != nil {
		return err
	}
	return respondPage(w, items, p, total)
}

func (s *Server) orgSessionsGone(w http.ResponseWriter, r *http.Request) error {
	return &Error{Status: http.StatusGone, Code: "GONE",
		Message: "GET /attendance/org-sessions has been removed. Use GET /admin/sessions instead."}
}

// adminSessions lists each employee's latest session (ACTIVE, then RECENT, then INACTIVE across the whole
// result), or with employee_id that employee's full history.
func (s *Server) adminSessions(w http.ResponseWriter, r *http.Request) error {
	p := pageOf(r, 50)
	status := sessionStatus(r)
	if v := r.URL.Query().Get("employee_id"); v != "" {
		items, total, err := s.employeeSessions(r, uuid.MustParse(v), status, p)
		if err != nil {
			return err
		}
		return respondPage(w, items, p, total)
	}
	var items []sessionItem
	var total int64
	err := s.tx(r, func(tx pgx.Tx) error {
		rows, err := s.q.SessionListLatestPerEmployee(r.Context(), tx, db.SessionListLatestPerEmployeeParams{
			Status: status, RowLimit: int32(p.Limit), RowOffset: p.offset(),
		})
		if err != nil {
			return err
		}
		items = make([]sessionItem, len(rows))
		for i, row := range rows {
			items[i] = sessionItem(row)
		}
		total, err = s.q.SessionCountLatestPerEmployee(r.Context(), tx, status)
		return err
	})
	if err != nil {
		return err
	}
	return respondPage(w, items, p, total)
}

func (s *Server) employeeSessions(r *http.Request, employee uuid.UUID, status string, p page) ([]sessionItem, int64, error) {
	var items []sessionItem
	var total int64
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		items, err = s.q.SessionListForEmployee(r.Context(), tx, db.SessionListForEmployeeParams{
			EmployeeID: employee, Status: status, RowLimit: int32(p.Limit), RowOffset: p.offset(),
		})
		if err != nil {
			return err
		}
		total, err = s.q.SessionCountForEmployee(r.Context(), tx, db.SessionCountForEmployeeParams{
			EmployeeID: employee, Status: status,
		})
		return err
	})
	if items == nil {
		items = []sessionItem{}
	}
	return items, total, err
}

// sessionStatus maps the status filter (already validated) to app.activity_status values, or "all".
func sessionStatus(r *http.Request) string {
	v := strings.ToUpper(r.URL.Query().Get("status"))
	if v == "" || v == "ALL" {
		return "all"
	}
	return v
}

// recalculate recomputes a session's distance and duration now. Employees can recalculate their own
// sessions, admins any of the organization's; any other id is 404.
func (s *Server) recalculate(w http.ResponseWriter, r *http.Request) error {
	id := uuid.MustParse(chi.URLParam(r, "sessionId"))
	var sess db.AttendanceSession
	err := s.tx(r, func(tx pgx.Tx) error {
		if _, err := s.q.SessionRecalculate(r.Context(), tx, id); err != nil {
			return err
		}
		var err error
		sess, err = s.q.SessionGet(r.Context(), tx, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Attendance session not found")
	}
	if err != nil {
		return err
	}
	if sess.DistanceRecalculationStatus == "failed" {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "RECALCULATION_FAILED",
			Message: "Distance recalculation failed; it is listed for replay"}
	}
	return respond(w, http.StatusOK, map[string]any{
		"session_id": sess.ID, "total_distance_km": sess.TotalDistanceKm,
		"total_duration_seconds": sess.TotalDurationSeconds, "distance_recalculation_status": sess.DistanceRecalculationStatus,
	})
}

type forceCheckOutBody struct {
	EmployeeID uuid.UUID `json:"employee_id"`
}

// forceCheckOut closes an employee's open session on an admin's behalf and returns it, with its distance
// and duration computed.
func (s *Server) forceCheckOut(w http.ResponseWriter, r *http.Request) error {
	var body forceCheckOutBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	var sess db.AttendanceSession
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		if sess, err = s.q.SessionForceCheckOut(r.Context(), tx, body.EmployeeID); err != nil {
			return err
		}
		// As in checkOut: the distance is computed by a trigger after RETURNING.
		sess, err = s.q.SessionGet(r.Context(), tx, sess.ID)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("No active session found for employee " + body.EmployeeID.String())
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, sess)
}

type replayBody struct {
	Limit *int32 `json:"limit"`
}

// replayDistance re-runs the distance of the organization's sessions whose computation failed.
func (s *Server) replayDistance(w http.ResponseWriter, r *http.Request) error {
	var body replayBody
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil {
			return err
		}
	}
	limit := int32(100)
	if body.Limit != nil {
		limit = *body.Limit
	}
	var replayed int32
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		replayed, err = s.q.SessionReplayFailed(r.Context(), tx, limit)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "replayed": replayed, "limit": limit})
	return nil
}
