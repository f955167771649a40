-- name: SessionCheckIn :one
-- Opens a session for the calling employee; the database sets the time and enforces one open session.
INSERT INTO attendance_sessions (organization_id, employee_id)
VALUES (app.org_id(), app.employee_id())
RETURNING *;

-- name: SessionCheckOut :one
-- Closes the calling employee's open session; no row when there is none.
UPDATE attendance_sessions
SET checkout_at = now()
WHERE employee_id = app.employee_id() AND checkout_at IS NULL
RETURNING *;

-- name: SessionListForEmployee :many
-- One employee's sessions, newest first, optionally filtered by activity status ('all' or a status).
SELECT s.id, s.employee_id, s.organization_id, s.checkin_at, s.checkout_at, s.total_distance_km,
       s.total_duration_seconds, s.distance_recalculation_status, s.created_at, s.updated_at,
       e.employee_code, e.name AS employee_name,
       app.activity_status(s.checkout_at)::text AS "activityStatus"
FROM attendance_sessions s
JOIN employees e ON e.organization_id = s.organization_id AND e.id = s.employee_id
WHERE s.employee_id = @employee_id
  AND (@status::text = 'all' OR app.activity_status(s.checkout_at) = @status::text)
ORDER BY s.checkin_at DESC
LIMIT @row_limit OFFSET @row_offset;

-- name: SessionCountForEmployee :one
SELECT count(*)
FROM attendance_sessions s
WHERE s.employee_id = @employee_id
  AND (@status::text = 'all' OR app.activity_status(s.checkout_at) = @status::text);

-- name: SessionListLatestPerEmployee :many
-- Each employee's latest session (one row per employee that has one): ACTIVE first, then RECENT, then
-- INACTIVE, most recently changed first within each.
SELECT s.id, s.employee_id, s.organization_id, s.checkin_at, s.checkout_at, s.total_distance_km,
       s.total_duration_seconds, s.distance_recalculation_status, s.created_at, s.updated_at,
       e.employee_code, e.name AS employee_name,
       app.activity_status(s.checkout_at)::text AS "activityStatus"
FROM employees e
JOIN LATERAL (
    SELECT *
    FROM attendance_sessions l
    WHERE l.organization_id = e.organization_id AND l.employee_id = e.id
    ORDER BY l.checkin_at DESC
    LIMIT 1
) s ON true
WHERE @status::text = 'all' OR app.activity_status(s.checkout_at) = @status::text
ORDER BY CASE app.activity_status(s.checkout_at) WHEN 'ACTIVE' THEN 0 WHEN 'RECENT' THEN 1 ELSE 2 END,
         s.updated_at DESC, s.id
LIMIT @row_limit OFFSET @row_offset;

-- name: SessionCountLatestPerEmployee :one
SELECT count(*)
FROM employees e
JOIN LATERAL (
    SELECT l.checkout_at
    FROM attendance_sessions l
    WHERE l.organization_id = e.organization_id AND l.employee_id = e.id
    ORDER BY l.checkin_at DESC
    LIMIT 1
) s ON true
WHERE @status::text = 'all' OR app.activity_status(s.checkout_at) = @status::text;

-- name: SessionGet :one
SELECT * FROM attendance_sessions WHERE id = @id;

-- name: SessionRecalculate :one
-- Recomputes a session the caller can see; no row when it cannot.
SELECT (app.recalculate_session(s.organization_id, s.id)).id::uuid AS id
FROM attendance_sessions s
WHERE s.id = @id;

-- name: SessionForceCheckOut :one
-- Closes an employee's open session (admins); no row when there is none.
UPDATE attendance_sessions
SET checkout_at = now()
WHERE employee_id = @employee_id AND checkout_at IS NULL
RETURNING *;

-- name: SessionReplayFailed :one
-- Re-runs the distance of up to @max_sessions sessions whose last computation failed; returns how many ran.
SELECT count(*)::int AS replayed
FROM (
    SELECT app.recalculate_session(s.organization_id, s.id)
    FROM attendance_sessions s
    WHERE s.distance_recalculation_status = 'failed'
    ORDER BY s.updated_at
    LIMIT @max_sessions
) r;
