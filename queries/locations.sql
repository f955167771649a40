-- name: LocationRecord :one
-- Stores a batch of fixes for one of the caller's sessions (all or nothing); returns how many were new.
-- A sequence number of -1 stands for "none".
SELECT app.record_locations(
    @org_id::uuid,
    @session_id::uuid,
    @latitudes::float8[],
    @longitudes::float8[],
    @accuracies::float8[],
    @recorded_at::timestamptz[],
    array_replace(@sequence_numbers::int4[], -1, NULL)
)::int AS inserted;

-- name: LocationInsertOne :one
-- Stores one fix of the caller's own session when the fix is new and the session takes it (open, or closed
-- with recorded_at inside it; the employee active; recorded_at after the check-in and at most 2 minutes
-- ahead): the rules of app.locations_session, as one plain INSERT under the policies (no plpgsql call). No
-- row otherwise: a duplicate or a refusal, which LocationRecordOne then answers or explains.
INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id,
                           latitude, longitude, accuracy, sequence_number)
SELECT a.organization_id, a.id, @recorded_at::timestamptz, a.employee_id,
       @latitude::float8, @longitude::float8, @accuracy::float8, sqlc.narg(sequence_number)::int4
FROM attendance_sessions a
JOIN employees e ON e.organization_id = a.organization_id AND e.id = a.employee_id
-- The caller's own session, found by its primary key: "IS TRUE" keeps the employee's check out of the index
-- conditions (as one, the planner may walk the employee's sessions instead).
WHERE a.organization_id = @org_id::uuid AND a.id = @session_id::uuid AND (a.employee_id = (SELECT app.employee_id())) IS TRUE
  AND e.is_active
  AND @recorded_at::timestamptz <= now() + interval '2 minutes'
  AND @recorded_at::timestamptz >= a.checkin_at
  AND (a.checkout_at IS NULL OR @recorded_at::timestamptz <= a.checkout_at)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: LocationRecordOne :one
-- Stores one fix (or finds it already stored) and answers the stored row; inserted is true when this
-- transaction stored it.
SELECT r.*, (r.created_at = now())::bool AS inserted
FROM app.record_location(@org_id::uuid, @session_id::uuid, @latitude::float8, @longitude::float8,
                         @accuracy::float8, @recorded_at::timestamptz, sqlc.narg(sequence_number)::int4) AS r;

-- name: LocationListForSession :many
-- A session's fixes in recorded_at order.
SELECT * FROM gps_locations WHERE organization_id = @org_id AND session_id = @session_id ORDER BY recorded_at;

-- name: LocationListSimplified :many
-- The fixes kept by a Douglas-Peucker simplification at @tolerance metres, in recorded_at order.
SELECT * FROM app.simplified_route(@org_id, @session_id, @tolerance::float8);

-- name: MapMarkers :many
-- The last fix of each employee whose latest session is ACTIVE or RECENT.
SELECT s.employee_id AS "employeeId", s.employee_name AS "employeeName", s.employee_code AS "employeeCode",
       s."activityStatus" AS status, s.id AS "sessionId",
       g.latitude, g.longitude, g.recorded_at AS "recordedAt"
FROM app.latest_sessions l
JOIN app.sessions s ON s.organization_id = l.organization_id AND s.id = l.session_id
JOIN LATERAL (
    SELECT p.latitude, p.longitude, p.recorded_at
    FROM gps_locations p
    WHERE p.organization_id = s.organization_id AND p.session_id = s.id
    ORDER BY p.recorded_at DESC
    LIMIT 1
) g ON true
WHERE l.organization_id = @org_id AND s."activityStatus" IN ('ACTIVE', 'RECENT')
ORDER BY s.employee_name, s.employee_id
LIMIT 1000;
