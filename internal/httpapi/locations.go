package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// point is one GPS fix as phones send it (validated against the OpenAPI document before decoding).
type point struct {
	Latitude       float64   `json:"latitude"`
	Longitude      float64   `json:"longitude"`
	Accuracy       float64   `json:"accuracy"`
	RecordedAt     time.Time `json:"recorded_at"`
	SequenceNumber *int32    `json:"sequence_number"`
}

type singlePointBody struct {
	SessionID uuid.UUID `json:"session_id"`
	point
}

type batchBody struct {
	SessionID uuid.UUID `json:"session_id"`
	Points    []point   `json:"points"`
}

// recordParams turns fixes into the column arrays app.record_locations takes.
func recordParams(org, session uuid.UUID, pts []point) db.LocationRecordParams {
	p := db.LocationRecordParams{
		OrgID:           org,
		SessionID:       session,
		Latitudes:       make([]float64, len(pts)),
		Longitudes:      make([]float64, len(pts)),
		Accuracies:      make([]float64, len(pts)),
		RecordedAt:      make([]time.Time, len(pts)),
		SequenceNumbers: make([]int32, len(pts)),
	}
	for i, pt := range pts {
		p.Latitudes[i], p.Longitudes[i], p.Accuracies[i], p.RecordedAt[i] = pt.Latitude, pt.Longitude, pt.Accuracy, pt.RecordedAt
		p.SequenceNumbers[i] = -1
		if pt.SequenceNumber != nil {
			p.SequenceNumbers[i] = *pt.SequenceNumber
		}
	}
	return p
}

// recordLocation stores one fix: 201 with the new row, or 200 with the stored row when the same fix
// (session, recorded_at) was already uploaded. A new fix is one plain INSERT (LocationInsertOne); when it
// stores nothing, app.record_location says why (the session's 4xx) or answers the stored row, in a second
// transaction. (Whatever changed in between, that answer is the one app.record_location gives now: it
// stores the fix if the session takes it by then.)
func (s *Server) recordLocation(w http.ResponseWriter, r *http.Request) error {
	body, ok := infoOf(r.Context()).body.(*singlePointBody)
	if !ok {
		body = new(singlePointBody)
		if err := decodeBody(r, body); err != nil {
			return err
		}
	}
	org := identityOf(r).OrgID
	loc, err := one(s, r, s.q.LocationInsertOne, db.LocationInsertOneParams{
		OrgID: org, SessionID: body.SessionID, Latitude: body.Latitude, Longitude: body.Longitude,
		Accuracy: body.Accuracy, RecordedAt: body.RecordedAt, SequenceNumber: body.SequenceNumber,
	})
	if err == nil {
		s.metrics.LocationsStored.Inc()
		s.orgs.addLocations(loc.OrganizationID, 1)
		return respondLocation(w, http.StatusCreated, loc)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	row, err := one(s, r, s.q.LocationRecordOne, db.LocationRecordOneParams{
		OrgID: org, SessionID: body.SessionID, Latitude: body.Latitude, Longitude: body.Longitude,
		Accuracy: body.Accuracy, RecordedAt: body.RecordedAt, SequenceNumber: body.SequenceNumber,
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if row.Inserted {
		status = http.StatusCreated
		s.metrics.LocationsStored.Inc()
		s.orgs.addLocations(row.OrganizationID, 1)
	}
	return respondLocation(w, status, db.GpsLocation{
		OrganizationID: row.OrganizationID, SessionID: row.SessionID, RecordedAt: row.RecordedAt, ID: row.ID,
		EmployeeID: row.EmployeeID, Latitude: row.Latitude, Longitude: row.Longitude, Accuracy: row.Accuracy,
		SequenceNumber: row.SequenceNumber, CreatedAt: row.CreatedAt,
	})
}

// recordLocations stores a batch of 1-100 fixes, all or nothing; inserted counts only new rows.
func (s *Server) recordLocations(w http.ResponseWriter, r *http.Request) error {
	body, ok := infoOf(r.Context()).body.(*batchBody)
	if !ok {
		body = new(batchBody)
		if err := decodeBody(r, body); err != nil {
			return err
		}
	}
	inserted, err := one(s, r, s.q.LocationRecord, recordParams(identityOf(r).OrgID, body.SessionID, body.Points))
	if err != nil {
		return err
	}
	s.metrics.LocationsStored.Add(float64(inserted))
	s.orgs.addLocations(identityOf(r).OrgID, int64(inserted))
	writeJSON(w, http.StatusCreated, map[string]any{"success": true, "inserted": inserted})
	return nil
}

// myRoute lists the fixes of one of the caller's sessions (sessionId or session_id). Any other id, UUID
// or not, has no fixes of the caller's: the answer is an empty list, as the original's, since the
// dashboard asks for the placeholder id of a check-in it has not seen confirmed yet ("optimistic-…").
func (s *Server) myRoute(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	v := q.Get("sessionId")
	if v == "" {
		v = q.Get("session_id")
	}
	if v == "" {
		return errInvalid("sessionId is required", map[string]any{"field": "sessionId"})
	}
	session, err := uuid.Parse(v)
	if err != nil {
		return respond(w, http.StatusOK, []db.GpsLocation{})
	}
	err = s.route(w, r, session)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return respond(w, http.StatusOK, []db.GpsLocation{})
	}
	return err
}

// sessionLocations lists a session's fixes for an admin.
func (s *Server) sessionLocations(w http.ResponseWriter, r *http.Request) error {
	return s.route(w, r, pathUUID(r, "id"))
}

// route answers a session's fixes in recorded_at order, optionally simplified to ?simplify=<metres> for
// drawing. A session the caller cannot see is 404.
func (s *Server) route(w http.ResponseWriter, r *http.Request, session uuid.UUID) error {
	org := identityOf(r).OrgID
	tolerance, _ := strconv.ParseFloat(r.URL.Query().Get("simplify"), 64)
	var pts []db.GpsLocation
	err := s.tx(r, func(tx db.DBTX) (err error) {
		if _, err = s.q.SessionGet(r.Context(), tx, db.SessionGetParams{OrgID: org, ID: session}); err != nil {
			return err
		}
		if tolerance > 0 {
			pts, err = s.q.LocationListSimplified(r.Context(), tx, db.LocationListSimplifiedParams{
				OrgID: org, SessionID: session, Tolerance: tolerance})
			return err
		}
		pts, err = s.q.LocationListForSession(r.Context(), tx, db.LocationListForSessionParams{OrgID: org, SessionID: session})
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Attendance session not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, pts)
}

// monitoringMap answers the last fix of every employee whose latest session is ACTIVE or RECENT.
func (s *Server) monitoringMap(w http.ResponseWriter, r *http.Request) error {
	markers, err := one(s, r, s.q.MapMarkers, identityOf(r).OrgID)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, markers)
}
