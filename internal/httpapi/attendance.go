package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

func (s *Server) checkIn(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	sess, err := one(s, r, s.q.SessionCheckIn, db.SessionCheckInParams{OrgID: id.OrgID, EmployeeID: id.EmployeeID.UUID})
	if err != nil {
		return err
	}
	return respond(w, http.StatusCreated, sess)
}

// checkOut closes the caller's open session; the answer carries its duration and distance.
func (s *Server) checkOut(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	sess, err := one(s, r, s.q.SessionCheckOut, db.SessionCheckOutParams{OrgID: id.OrgID, EmployeeID: id.EmployeeID.UUID})
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
	id := identityOf(r)
	if !id.EmployeeID.Valid {
		return respondPage(w, []db.SessionListForEmployeeRow{}, pageOf(r, 20), 0)
	}
	return s.employeeSessions(w, r, 20, id.EmployeeID.UUID)
}

func (s *Server) orgSessionsGone(w http.ResponseWriter, r *http.Request) error {
	return &Error{Status: http.StatusGone, Code: "GONE",
		Message: "GET /attendance/org-sessions has been removed. Use GET /admin/sessions instead."}
}

// adminSessions lists each employee's latest session (ACTIVE, then RECENT, then INACTIVE across the whole
// result), or with employee_id that employee's full history.
func (s *Server) adminSessions(w http.ResponseWriter, r *http.Request) error {
	if employee := queryUUID(r, "employee_id"); employee != nil {
		return s.employeeSessions(w, r, 50, *employee)
	}
	org, status := identityOf(r).OrgID, sessionStatus(r)
	return respondList(s, w, r, 50, func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]db.SessionListLatestRow, error) {
		return s.q.SessionListLatest(ctx, tx, db.SessionListLatestParams{
			OrgID: org, Status: status, RowLimit: limit, RowOffset: offset})
	})
}

func (s *Server) employeeSessions(w http.ResponseWriter, r *http.Request, defaultLimit int, employee uuid.UUID) error {
	org, status := identityOf(r).OrgID, sessionStatus(r)
	return respondList(s, w, r, defaultLimit, func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]db.SessionListForEmployeeRow, error) {
		return s.q.SessionListForEmployee(ctx, tx, db.SessionListForEmployeeParams{
			OrgID: org, EmployeeID: employee, Status: status, RowLimit: limit, RowOffset: offset})
	})
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
	start := time.Now()
	sess, err := one(s, r, s.q.SessionRecalculate, db.SessionRecalculateParams{
		OrgID: identityOf(r).OrgID, ID: uuid.MustParse(chi.URLParam(r, "sessionId"))})
	if err != nil {
		return err
	}
	s.orgs.addRecalcs(sess.OrganizationID, 1, time.Since(start))
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
	sess, err := one(s, r, s.q.SessionCheckOut, db.SessionCheckOutParams{OrgID: identityOf(r).OrgID, EmployeeID: body.EmployeeID})
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
	replayed, err := one(s, r, s.q.SessionReplayFailed, db.SessionReplayFailedParams{OrgID: identityOf(r).OrgID, MaxSessions: limit})
	if err != nil {
		return err
	}
	s.orgs.addRecalcs(identityOf(r).OrgID, int64(replayed), 0)
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "replayed": replayed, "limit": limit})
	return nil
}
