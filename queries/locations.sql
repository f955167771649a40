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
