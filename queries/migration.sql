-- name: SchemaLayout :many
-- The comment on schema app (no row before the first migration): the schema layout it was created by.
SELECT coalesce(obj_description(n.oid, 'pg_namespace'), '')::text AS layout
FROM pg_catalog.pg_namespace n
WHERE n.nspname = 'app';
