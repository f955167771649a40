-- 000001 roles and the app schema: who may do what, the extensions, and the helpers every later file uses.
--
-- Why this shape:
-- * Requests run as fieldtrack_api (switched per transaction with set_config('role', ...)). It is not the
--   owner and has no BYPASSRLS, and every tenant table FORCEs row-level security, so without claims it sees
--   nothing. Policies compare organization_id with (SELECT app.org_id()): the scalar subquery becomes an
--   InitPlan, so the setting is read once per statement, not once per row.
-- * Background work (the listener's hand-off, the SSE fan-out, webhook delivery) runs as fieldtrack_worker,
--   which sees the webhook tables of every organization and nothing else.
-- * Functions, views and internal tables of ours live in schema app; the tables analysts and the dashboard
--   know keep the original's names in public.
-- * One file per noun from here on (organizations, the outbox and webhooks, employees and users,
--   attendance, GPS and distance, expenses), each with its tables, rules, policies and grants. Migrations
--   are append-only once released.
-- Locks: creates objects only; run on an empty database.

-- Roles are cluster-wide, so several databases (e.g. test databases) can share them: create when missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_api') THEN
        CREATE ROLE fieldtrack_api NOLOGIN NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_worker') THEN
        CREATE ROLE fieldtrack_worker NOLOGIN NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_analyst') THEN
        CREATE ROLE fieldtrack_analyst NOLOGIN NOBYPASSRLS;
    END IF;
    -- The role a production DATABASE_URL for `serve` logs in as: it can do nothing but switch to
    -- fieldtrack_api or fieldtrack_worker (NOINHERIT). No password until an operator sets one.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_authenticator') THEN
        CREATE ROLE fieldtrack_authenticator LOGIN NOINHERIT NOBYPASSRLS;
    END IF;
    -- The migrating role must be able to switch too (make run serves as the owner).
    EXECUTE format('GRANT fieldtrack_api, fieldtrack_worker TO %I', current_user);
END
$$;

GRANT fieldtrack_api, fieldtrack_worker TO fieldtrack_authenticator;

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS postgis;

-- pg_cron can only be created in the database named by cron.database_name; other databases of the same
-- cluster (scratch databases of tests) migrate without it and schedule nothing.
DO $$
BEGIN
    IF current_setting('cron.database_name', true) = current_database() THEN
        CREATE EXTENSION IF NOT EXISTS pg_cron;
    ELSE
        RAISE NOTICE 'pg_cron not created: cron.database_name is %, this database is %',
            coalesce(current_setting('cron.database_name', true), '(unset)'), current_database();
    END IF;
END
$$;

CREATE SCHEMA app;
-- `fieldtrack migrate up` reads this comment to tell this layout from the unreleased one before it.
COMMENT ON SCHEMA app IS 'FieldTrack functions, views and internal tables (schema layout 2: one migration per noun)';
GRANT USAGE ON SCHEMA app TO fieldtrack_api, fieldtrack_worker, fieldtrack_analyst;

-- Claim readers. Each request sets these with set_config(..., true) inside its transaction; outside a
-- request they are NULL, so every policy matches nothing.
CREATE FUNCTION app.org_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.org_id', true), '')::uuid $$;

CREATE FUNCTION app.user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;

CREATE FUNCTION app.role() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.role', true), '') $$;

CREATE FUNCTION app.employee_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.employee_id', true), '')::uuid $$;

-- The one definition of a session's activity status, used by every endpoint and snapshot:
-- open -> ACTIVE, closed within the last 24 h -> RECENT, otherwise INACTIVE.
CREATE FUNCTION app.activity_status(checkout_at timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT CASE
            WHEN checkout_at IS NULL THEN 'ACTIVE'
            WHEN checkout_at >= now() - interval '24 hours' THEN 'RECENT'
            ELSE 'INACTIVE'
        END
    $$;

-- Keeps updated_at for tables whose only BEFORE UPDATE rule it is.
CREATE FUNCTION app.set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- The exact number of rows a list query matched, carried by every row of its page (count(*) OVER ()).
-- A type of its own so that the generated Go code keeps it out of the rows' JSON.
CREATE DOMAIN app.list_total AS bigint;
