package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// trackingSettingsBody is a PATCH of the settings; validation (the ranges, at least one field) already ran.
type trackingSettingsBody struct {
	MaxAccuracyM    *float64 `json:"max_accuracy_m"`
	MaxSpeedMps     *float64 `json:"max_speed_mps"`
	JitterFloorM    *float64 `json:"jitter_floor_m"`
	StayRadiusM     *float64 `json:"stay_radius_m"`
	StayMinSeconds  *int32   `json:"stay_min_seconds"`
	MaxSessionHours *int32   `json:"max_session_hours"`
}

// trackingSettings answers the GPS cleaning's settings in force for the caller's organization.
func (s *Server) trackingSettings(w http.ResponseWriter, r *http.Request) error {
	row, err := one(s, r, s.q.TrackingSettingsGet, identityOf(r).OrgID)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, row)
}

// updateTrackingSettings changes the settings sent and answers those now in force (the trigger audits).
func (s *Server) updateTrackingSettings(w http.ResponseWriter, r *http.Request) error {
	var body trackingSettingsBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	row, err := one(s, r, s.q.TrackingSettingsUpdate, db.TrackingSettingsUpdateParams{
		OrgID: identityOf(r).OrgID, MaxAccuracyM: body.MaxAccuracyM, MaxSpeedMps: body.MaxSpeedMps,
		JitterFloorM: body.JitterFloorM, StayRadiusM: body.StayRadiusM, StayMinSeconds: body.StayMinSeconds,
		MaxSessionHours: body.MaxSessionHours,
	})
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, row)
}

// distanceReport explains a session's distance (GET /admin/sessions/{id}/distance-report for admins,
// GET /attendance/{sessionId}/distance-report for the session's employee too): the fixes received, kept and
// dropped by reason, the stays, the cleaned track as GeoJSON (?simplify=<metres>), the computed and the
// naive distance and the settings used, computed by the function that computes the session's distance.
// param names the path parameter; a session the caller cannot see is 404.
func (s *Server) distanceReport(param string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tolerance, _ := strconv.ParseFloat(r.URL.Query().Get("simplify"), 64) // validated: 0 to 10000
		report, err := one(s, r, s.q.SessionDistanceReport, db.SessionDistanceReportParams{
			OrgID: identityOf(r).OrgID, SessionID: pathUUID(r, param), Tolerance: tolerance})
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotFound("Attendance session not found")
		}
		if err != nil {
			return err
		}
		return respond(w, http.StatusOK, report)
	}
}
