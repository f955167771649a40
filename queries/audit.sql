-- The audit log: written by triggers (and app.audit) in the transaction of each admin action; read here.

-- name: AuditList :many
-- The organization's audit rows before a time, newest first, optionally of one event.
SELECT * FROM admin_audit_log
WHERE organization_id = @org_id
  AND (sqlc.narg(before)::timestamptz IS NULL OR created_at < sqlc.narg(before)::timestamptz)
  AND (sqlc.narg(event)::text IS NULL OR event = sqlc.narg(event)::text)
ORDER BY created_at DESC, id DESC
LIMIT @row_limit;

-- name: Audit :exec
-- An admin action that changes no row of its own (a webhook test, a recalculation).
SELECT app.audit(@event, @resource_type, @resource_id, @payload);
