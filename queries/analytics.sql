-- Analytics: the admin dashboard and summaries, from the snapshots (000014) and the leaderboard views
-- (000015). A range of instants [from_at, to_at] is the organization's days they fall on (each day
-- computed once per statement: a scalar subquery).

-- name: DashboardFigures :one
SELECT active_employee_count, recent_employee_count, inactive_employee_count, active_employees_today,
       today_session_count, today_distance_km::float8 AS today_distance_km, pending_expense_count,
       pending_expense_amount::float8 AS pending_expense_amount, updated_at::timestamptz AS updated_at
FROM org_dashboard_snapshot
WHERE organization_id = @org_id;

-- name: SessionTrend :many
-- The organization's days from from_at's to to_at's, oldest first (days without sessions or expenses
-- are absent).
SELECT date, total_sessions AS sessions, total_distance_km::float8 AS distance, total_duration_seconds AS duration
FROM org_daily_metrics
WHERE organization_id = @org_id
  AND date BETWEEN (SELECT app.org_date(@org_id, @from_at::timestamptz)) AND (SELECT app.org_date(@org_id, @to_at::timestamptz))
ORDER BY date;

-- name: Leaderboard :many
-- The organization's employees ranked by metric (distance, duration, sessions or expenses: the amount
-- filed) over the days of the range; ties by employee id.
SELECT row_number() OVER (ORDER BY r.score DESC, r.employee_id)::int AS rank, r.employee_id, n.employee_code,
       n.employee_name, r.distance, r.sessions, r.duration, r.expenses
FROM (SELECT d.employee_id, sum(d.distance_km)::float8 AS distance, sum(d.sessions)::int AS sessions,
             sum(d.duration_seconds)::bigint AS duration, sum(d.expenses_amount)::float8 AS expenses,
             -- a searched CASE: Citus sends a simple one (CASE @metric WHEN ...) to the shards garbled
             CASE WHEN @metric::text = 'duration' THEN sum(d.duration_seconds)::numeric
                  WHEN @metric::text = 'sessions' THEN sum(d.sessions)::numeric
                  WHEN @metric::text = 'expenses' THEN sum(d.expenses_amount)
                  ELSE sum(d.distance_km) END AS score
        FROM app.leaderboard_days d
       WHERE d.organization_id = @org_id
         AND d.date BETWEEN (SELECT app.org_date(@org_id, @from_at::timestamptz)) AND (SELECT app.org_date(@org_id, @to_at::timestamptz))
       GROUP BY d.employee_id) r
JOIN app.leaderboard_names n ON n.organization_id = @org_id AND n.employee_id = r.employee_id
ORDER BY 1
LIMIT @row_limit;

-- name: OrgSummary :one
-- Sessions of the days of the range, expenses submitted in it, and who is checked in now.
SELECT coalesce((SELECT sum(d.total_sessions) FROM org_daily_metrics d
                  WHERE d.organization_id = @org_id
                    AND d.date BETWEEN (SELECT app.org_date(@org_id, @from_at::timestamptz)) AND (SELECT app.org_date(@org_id, @to_at::timestamptz))), 0)::int
           AS "totalSessions",
       coalesce((SELECT sum(d.total_distance_km) FROM org_daily_metrics d
                  WHERE d.organization_id = @org_id
                    AND d.date BETWEEN (SELECT app.org_date(@org_id, @from_at::timestamptz)) AND (SELECT app.org_date(@org_id, @to_at::timestamptz))), 0)::float8
           AS "totalDistanceKm",
       coalesce((SELECT sum(d.total_duration_seconds) FROM org_daily_metrics d
                  WHERE d.organization_id = @org_id
                    AND d.date BETWEEN (SELECT app.org_date(@org_id, @from_at::timestamptz)) AND (SELECT app.org_date(@org_id, @to_at::timestamptz))), 0)::bigint
           AS "totalDurationSeconds",
       x.n::int AS "totalExpenses", round(x.approved, 2)::float8 AS "approvedExpenseAmount",
       round(x.rejected, 2)::float8 AS "rejectedExpenseAmount",
       (SELECT count(*) FROM employee_last_state l WHERE l.organization_id = @org_id AND l.is_checked_in)::int
           AS "activeEmployeesCount"
FROM (SELECT count(*) AS n, coalesce(sum(e.amount) FILTER (WHERE e.status = 'APPROVED'), 0) AS approved,
             coalesce(sum(e.amount) FILTER (WHERE e.status = 'REJECTED'), 0) AS rejected
        FROM expenses e
       WHERE e.organization_id = @org_id AND e.submitted_at BETWEEN @from_at AND @to_at) x;

-- name: EmployeeOfUser :one
-- The active employee a user is (none: no row).
SELECT id FROM employees WHERE organization_id = @org_id AND user_id = @user_id AND is_active;

-- name: UserSummary :one
-- An employee's sessions, distance and duration over the days of the range (all time without one), and
-- its expenses filed in it.
SELECT coalesce(sum(d.sessions), 0)::int AS "sessionsCount",
       coalesce(sum(d.distance_km), 0)::float8 AS "totalDistanceKm",
       coalesce(sum(d.duration_seconds), 0)::bigint AS "totalDurationSeconds",
       coalesce(sum(d.expenses_count), 0)::int AS "totalExpenses",
       (SELECT coalesce(round(sum(e.amount), 2), 0) FROM expenses e
         WHERE e.organization_id = @org_id AND e.employee_id = @employee_id AND e.status = 'APPROVED'
           AND (sqlc.narg(from_at)::timestamptz IS NULL OR e.submitted_at >= sqlc.narg(from_at))
           AND (sqlc.narg(to_at)::timestamptz IS NULL OR e.submitted_at <= sqlc.narg(to_at)))::float8
           AS "approvedExpenseAmount",
       coalesce(round(sum(d.distance_km) / nullif(sum(d.sessions), 0), 3), 0)::float8 AS "averageDistancePerSession",
       coalesce(round(sum(d.duration_seconds) / nullif(sum(d.sessions), 0)), 0)::bigint
           AS "averageSessionDurationSeconds"
FROM employee_daily_metrics d
WHERE d.organization_id = @org_id AND d.employee_id = @employee_id
  AND (sqlc.narg(from_at)::timestamptz IS NULL OR d.date >= (SELECT app.org_date(@org_id, sqlc.narg(from_at))))
  AND (sqlc.narg(to_at)::timestamptz IS NULL OR d.date <= (SELECT app.org_date(@org_id, sqlc.narg(to_at))));

-- name: SnapshotHealth :many
-- What the latest reconciliation found for the organization, per table.
SELECT table_name, checked_at, rows_behind, error FROM app.snapshot_health;

-- name: SnapshotRows :many
-- Each snapshot table's rows of the organization and its latest change (NULL: no rows).
SELECT 'employee_last_state'::text AS table_name, count(*) AS row_count, max(x.updated_at) AS latest_update_at
  FROM employee_last_state x WHERE x.organization_id = @org_id
UNION ALL
SELECT 'employee_latest_sessions', count(*), max(x.updated_at) FROM employee_latest_sessions x WHERE x.organization_id = @org_id
UNION ALL
SELECT 'employee_metrics_snapshot', count(*), max(x.updated_at) FROM employee_metrics_snapshot x WHERE x.organization_id = @org_id
UNION ALL
SELECT 'employee_daily_metrics', count(*), max(x.updated_at) FROM employee_daily_metrics x WHERE x.organization_id = @org_id
UNION ALL
SELECT 'pending_expenses', count(*), max(x.updated_at) FROM pending_expenses x WHERE x.organization_id = @org_id;

-- name: OpenSessionMeasures :one
-- Open sessions whose fixes arrived over two minutes before and are not measured yet, and the latest
-- measure of the organization.
SELECT (SELECT count(*) FROM employee_last_state l
          LEFT JOIN session_summaries ss ON ss.organization_id = l.organization_id AND ss.session_id = l.last_session_id
         WHERE l.organization_id = @org_id AND l.is_checked_in
           AND l.last_upload_at < now() - interval '2 minutes'
           AND l.last_upload_at > coalesce(ss.computed_at, '-infinity'))::int AS behind,
       (SELECT max(ss.computed_at) FROM session_summaries ss WHERE ss.organization_id = @org_id) AS last_measured;
