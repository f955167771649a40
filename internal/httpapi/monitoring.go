package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// startMonitoring opens the admin's monitoring period, or answers the one already open (201 either way,
// as the original).
func (s *Server) startMonitoring(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	var period db.AdminSession
	err := s.tx(r, func(tx db.DBTX) (err error) {
		period, err = s.q.MonitoringStart(r.Context(), tx, db.MonitoringStartParams{OrgID: id.OrgID, AdminID: id.UserID})
		if errors.Is(err, pgx.ErrNoRows) {
			period, err = s.q.MonitoringOpen(r.Context(), tx, db.MonitoringOpenParams{OrgID: id.OrgID, AdminID: id.UserID})
		}
		return err
	})
	if err != nil {
		return err
	}
	return respond(w, http.StatusCreated, period)
}

// stopMonitoring closes the admin's open monitoring period.
func (s *Server) stopMonitoring(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	period, err := one(s, r, s.q.MonitoringStop, db.MonitoringStopParams{OrgID: id.OrgID, AdminID: id.UserID})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("No active monitoring session found. Start one first.")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, period)
}

// monitoringHistory pages the admin's monitoring periods, latest first.
func (s *Server) monitoringHistory(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	return respondList(s, w, r, 20, func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]db.MonitoringHistoryRow, error) {
		return s.q.MonitoringHistory(ctx, tx, db.MonitoringHistoryParams{OrgID: id.OrgID, AdminID: id.UserID,
			RowLimit: limit, RowOffset: offset})
	})
}
