-- name: LocationRecord :one
-- Stores a batch of fixes for one of the caller's sessions (all or nothing); returns how many were new.
-- A sequence number of -1 stands for "none".
SELECT app.record_locations(
    @session_id::uuid,
    @latitudes::float8[],
    @longitudes::float8[],
    @accuracies::float8[],
    @recorded_at::timestamptz[],
    array_replace(@sequence_numbers::int4[], -1, NULL)
)::int AS inserted;

-- name: LocationRecordOne :one
-- Stores one fix (or finds it already stored) and answers the stored row; inserted is true when this
-- transaction stored it.
SELECT r.*, (r.created_at = now())::bool AS inserted
FROM app.record_location(@session_id::uuid, @latitude::float8, @longitude::float8, @accuracy::float8,
                         @recorded_at::timestamptz, sqlc.narg(sequence_number)::int4) AS r;

-- name: LocationListForSession :many
-- A session's fixes in recorded_at order.
SELECT * FROM gps_locations WHERE session_id = @session_id ORDER BY recorded_at;

-- name: LocationListSimplified :many
-- The fixes kept by a Douglas-Peucker simplification at @tolerance metres, in recorded_at order. The
-- sub-select makes the simplification run once (an InitPlan), not once per fix of the session.
SELECT g.*
FROM gps_locations g
WHERE g.session_id = @session_id
  AND g.recorded_at = ANY ((SELECT app.simplified_route_times(@session_id, @tolerance::float8))::timestamptz[])
ORDER BY g.recorded_at;

-- name: MapMarkers :many
-- The last fix of each employee whose latest session is ACTIVE or RECENT.
SELECT e.id AS "employeeId", e.name AS "employeeName", e.employee_code AS "employeeCode",
       app.activity_status(s.checkout_at)::text AS status, s.id AS "sessionId",
       g.latitude, g.longitude, g.recorded_at AS "recordedAt"
FROM employees e
JOIN LATERAL (
    SELECT l.id, l.checkout_at
    FROM attendance_sessions l
    WHERE l.organization_id = e.organization_id AND l.employee_id = e.id
    ORDER BY l.checkin_at DESC
    LIMIT 1
) s ON true
JOIN LATERAL (
    SELECT p.latitude, p.longitude, p.recorded_at
    FROM gps_locations p
    WHERE p.organization_id = e.organization_id AND p.session_id = s.id
    ORDER BY p.recorded_at DESC
    LIMIT 1
) g ON true
WHERE app.activity_status(s.checkout_at) IN ('ACTIVE', 'RECENT')
ORDER BY e.name, e.id
LIMIT 1000;
