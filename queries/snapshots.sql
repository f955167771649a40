-- Snapshots and their reconciliation, as the owner (`fieldtrack reconcile`).

-- name: OrganizationIDs :many
SELECT id FROM organizations ORDER BY id;

-- name: ReconcileOrg :many
-- One organization's snapshots against their definitions; repaired unless dry_run.
SELECT table_name::text AS table_name, rows_checked::bigint AS rows_checked, rows_inserted::bigint AS rows_inserted,
       rows_updated::bigint AS rows_updated, rows_deleted::bigint AS rows_deleted
FROM app.reconcile_org(@org_id::uuid, @dry_run::boolean);
