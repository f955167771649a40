-- name: EmployeeCreate :one
-- Adds an employee to the organization; the database generates employee_code when it is NULL.
INSERT INTO employees (organization_id, name, employee_code, user_id, phone)
VALUES (@org_id, @name, sqlc.narg(employee_code), sqlc.narg(user_id), sqlc.narg(phone))
RETURNING *;

-- name: EmployeeGet :one
SELECT * FROM employees WHERE organization_id = @org_id AND id = @id;

-- name: EmployeeList :many
-- The organization's employees with their latest session's state, in employee-number order, optionally
-- those matching a search (a substring of name or code, any case), active or not, and in a segment:
-- active (checked in), recent (checked out within 24 h), inactive (the others); the active and recent
-- segments latest check-in first, as the original.
SELECT s.*, count(*) OVER ()::app.list_total AS total
FROM app.employee_states s
WHERE s.organization_id = @org_id
  AND (sqlc.narg(search)::text IS NULL
       OR strpos(lower(s.name), lower(sqlc.narg(search)::text)) > 0
       OR strpos(lower(s.employee_code), lower(sqlc.narg(search)::text)) > 0)
  AND (sqlc.narg(is_active)::boolean IS NULL OR s.is_active = sqlc.narg(is_active)::boolean)
  AND (sqlc.narg(segment)::text IS NULL
       OR (sqlc.narg(segment)::text = 'active' AND s.is_checked_in)
       OR (sqlc.narg(segment)::text = 'recent' AND s.activity_status = 'RECENT')
       OR (sqlc.narg(segment)::text = 'inactive' AND s.activity_status = 'INACTIVE'))
ORDER BY CASE WHEN sqlc.narg(segment)::text IN ('active', 'recent') THEN s.last_check_in_at END DESC NULLS LAST,
         s.employee_number NULLS LAST, s.employee_code, s.id
LIMIT @row_limit OFFSET @row_offset;

-- name: EmployeeState :one
-- One employee with its latest session's state.
SELECT * FROM app.employee_states WHERE organization_id = @org_id AND id = @id;

-- name: EmployeeUpdate :one
-- Changes an employee's name and phone (set_phone: whether phone was given, null clearing it). With
-- neither, only updated_at moves.
UPDATE employees
SET name  = coalesce(sqlc.narg(name)::text, name),
    phone = CASE WHEN @set_phone::boolean THEN sqlc.narg(phone)::text ELSE phone END
WHERE organization_id = @org_id AND id = @id
RETURNING *;

-- name: EmployeeSetActive :one
-- Activates or deactivates an employee; deactivation also checks out its open session.
UPDATE employees SET is_active = @is_active
WHERE organization_id = @org_id AND id = @id
RETURNING *;

-- name: EmployeeTotals :one
-- An employee's totals of all time: sessions, distance, duration, expenses filed and approved.
SELECT (SELECT count(*) FROM attendance_sessions s
         WHERE s.organization_id = @org_id AND s.employee_id = @employee_id)::int AS "totalSessions",
       (SELECT coalesce(sum(s.total_distance_km), 0) FROM attendance_sessions s
         WHERE s.organization_id = @org_id AND s.employee_id = @employee_id)::float8 AS "totalDistanceKm",
       (SELECT coalesce(sum(s.total_duration_seconds), 0) FROM attendance_sessions s
         WHERE s.organization_id = @org_id AND s.employee_id = @employee_id)::bigint AS "totalDurationSeconds",
       (SELECT count(*) FROM expenses x
         WHERE x.organization_id = @org_id AND x.employee_id = @employee_id)::int AS "expensesSubmitted",
       (SELECT count(*) FROM expenses x
         WHERE x.organization_id = @org_id AND x.employee_id = @employee_id AND x.status = 'APPROVED')::int
           AS "expensesApproved";

-- name: EmployeeWeek :one
-- An employee's week so far (from Monday 00:00 UTC): sessions checked in, their distance and hours (two
-- decimals), and its expenses filed and approved of all time.
SELECT count(*) FILTER (WHERE s.checkin_at >= w.start)::int AS "sessionsThisWeek",
       coalesce(sum(s.total_distance_km) FILTER (WHERE s.checkin_at >= w.start), 0)::float8 AS "distanceThisWeek",
       round(coalesce(sum(s.total_duration_seconds) FILTER (WHERE s.checkin_at >= w.start), 0) / 3600.0, 2)::float8
           AS "hoursThisWeek",
       (SELECT count(*) FROM expenses x
         WHERE x.organization_id = @org_id AND x.employee_id = @employee_id)::int AS "expensesSubmitted",
       (SELECT count(*) FROM expenses x
         WHERE x.organization_id = @org_id AND x.employee_id = @employee_id AND x.status = 'APPROVED')::int
           AS "expensesApproved"
FROM (SELECT date_trunc('week', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start) w
LEFT JOIN attendance_sessions s
       ON s.organization_id = @org_id AND s.employee_id = @employee_id AND s.checkin_at >= w.start
GROUP BY w.start;

-- name: EmployeeRecentSessions :many
-- An employee's ten latest sessions.
SELECT id, checkin_at, checkout_at, total_distance_km, total_duration_seconds, distance_recalculation_status,
       created_at
FROM attendance_sessions
WHERE organization_id = @org_id AND employee_id = @employee_id
ORDER BY checkin_at DESC
LIMIT 10;

-- name: EmployeeRecentExpenses :many
-- An employee's ten latest expenses.
SELECT id, amount, description, status, submitted_at, reviewed_at
FROM expenses
WHERE organization_id = @org_id AND employee_id = @employee_id
ORDER BY submitted_at DESC, id
LIMIT 10;

-- name: SearchEmployees :many
-- Employees whose name or code contains q (any case), by name.
SELECT id, name, employee_code, is_active
FROM employees
WHERE organization_id = @org_id
  AND (strpos(lower(name), lower(@q::text)) > 0 OR strpos(lower(employee_code), lower(@q::text)) > 0)
ORDER BY name, id
LIMIT @max_rows;

-- name: SearchExpenses :many
-- Expenses whose description contains q (any case), newest first.
SELECT id, description, amount, status, employee_name
FROM app.expense_rows
WHERE organization_id = @org_id AND strpos(lower(description), lower(@q::text)) > 0
ORDER BY submitted_at DESC, id
LIMIT @max_rows;
