-- Admin monitoring periods; each admin sees its own.

-- name: MonitoringStart :one
-- Opens a monitoring period of the admin; no row when one is open already.
INSERT INTO admin_sessions (organization_id, admin_id)
VALUES (@org_id, @admin_id)
ON CONFLICT (organization_id, admin_id) WHERE ended_at IS NULL DO NOTHING
RETURNING *;

-- name: MonitoringOpen :one
-- The admin's open monitoring period.
SELECT * FROM admin_sessions WHERE organization_id = @org_id AND admin_id = @admin_id AND ended_at IS NULL;

-- name: MonitoringStop :one
-- Closes the admin's open monitoring period; no row when none is open.
UPDATE admin_sessions SET ended_at = now()
WHERE organization_id = @org_id AND admin_id = @admin_id AND ended_at IS NULL
RETURNING *;

-- name: MonitoringHistory :many
-- The admin's monitoring periods, latest first.
SELECT a.*, count(*) OVER ()::app.list_total AS total
FROM admin_sessions a
WHERE a.organization_id = @org_id AND a.admin_id = @admin_id
ORDER BY a.started_at DESC, a.id
LIMIT @row_limit OFFSET @row_offset;

-- name: OperatorMetrics :many
-- What operators scrape from Postgres (app.operator_metrics): snapshot drift, reconciliation errors and
-- last run, pg_cron failures.
SELECT m.name::text AS name, m.label::text AS label, m.value::float8 AS value FROM app.operator_metrics() m;
