-- name: SchemaLayout :many
-- The comment on schema app (no row before the first migration): the schema layout it was created by.
SELECT coalesce(obj_description(n.oid, 'pg_namespace'), '')::text AS layout
FROM pg_catalog.pg_namespace n
WHERE n.nspname = 'app';

-- name: CitusState :one
-- Whether this database is a Citus coordinator's (the extension is created on every node before the
-- nodes are added; README "Scaling past one Postgres"), and whether its SET LOCALs reach the workers.
SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') AS installed,
       coalesce(current_setting('citus.propagate_set_commands', true), '')::text AS propagate_set_commands;
