-- Attendance sessions. Every query names the caller's organization (@org_id, from the claims) beside the
-- policies that enforce it.

-- name: SessionCheckIn :one
-- Opens a session for the employee; the database sets the time and enforces one open session.
INSERT INTO attendance_sessions (organization_id, employee_id)
VALUES (@org_id, @employee_id)
RETURNING *;

-- name: SessionCheckOut :one
-- Closes the employee's open session (the employee's own check-out, or an admin's force check-out) and
-- answers it complete: the check-out trigger computed its duration and distance. No row when there is none.
UPDATE attendance_sessions
SET checkout_at = now()
WHERE organization_id = @org_id AND employee_id = @employee_id AND checkout_at IS NULL
RETURNING *;

-- name: SessionListForEmployee :many
-- One employee's sessions, newest first, optionally those of one activity status ('all' or a status).
SELECT s.*, count(*) OVER ()::app.list_total AS total
FROM app.sessions s
WHERE s.organization_id = @org_id AND s.employee_id = @employee_id
  AND (@status::text = 'all' OR s."activityStatus" = @status::text)
ORDER BY s.checkin_at DESC
LIMIT @row_limit OFFSET @row_offset;

-- name: SessionListLatest :many
-- Each employee's latest session (employees without one are not listed): ACTIVE first, then RECENT, then
-- INACTIVE, most recently changed first within each.
SELECT s.*, count(*) OVER ()::app.list_total AS total
FROM app.latest_sessions l
JOIN app.sessions s ON s.organization_id = l.organization_id AND s.id = l.session_id
WHERE l.organization_id = @org_id
  AND (@status::text = 'all' OR s."activityStatus" = @status::text)
ORDER BY CASE s."activityStatus" WHEN 'ACTIVE' THEN 0 WHEN 'RECENT' THEN 1 ELSE 2 END, s.updated_at DESC, s.id
LIMIT @row_limit OFFSET @row_offset;

-- name: SessionGet :one
SELECT * FROM attendance_sessions WHERE organization_id = @org_id AND id = @id;

-- name: SessionRecalculate :one
-- Measures a session again now and answers it; a session the caller cannot see is PT404.
SELECT * FROM app.recalculate_session(@org_id, @id);

-- name: SessionReplayFailed :one
-- Recalculates up to @max_sessions of the organization's sessions whose last computation failed; answers
-- how many ran.
SELECT app.replay_failed_distances(@org_id, @max_sessions)::int AS replayed;
