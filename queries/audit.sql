-- The audit log: written by triggers in the transaction of each admin action; read here.

-- name: AuditList :many
-- The organization's audit rows before a time, newest first, optionally of one event.
SELECT * FROM admin_audit_log
WHERE organization_id = @org_id
  AND (sqlc.narg(before)::timestamptz IS NULL OR created_at < sqlc.narg(before)::timestamptz)
  AND (sqlc.narg(event)::text IS NULL OR event = sqlc.narg(event)::text)
ORDER BY created_at DESC, id DESC
LIMIT @row_limit;
