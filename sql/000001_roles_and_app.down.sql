-- 000001 roles and the app schema, reversed. The roles are cluster-wide and may serve other databases of the
-- cluster, so they stay; everything this database owns goes.
DROP SCHEMA IF EXISTS app CASCADE;
DROP EXTENSION IF EXISTS pg_cron;
DROP EXTENSION IF EXISTS postgis;
DROP EXTENSION IF EXISTS pgcrypto;
