-- 000001 foundation: roles, the app schema with the claim readers, and the six core tenant tables.
--
-- Why this shape:
-- * Requests run as fieldtrack_api (switched per transaction with set_config('role', ...)). It is not the
--   owner and has no BYPASSRLS, and every tenant table FORCEs row-level security, so without claims it sees
--   nothing. Policies compare organization_id with (SELECT app.org_id()): the scalar subquery becomes an
--   InitPlan, so the setting is read once per statement, not once per row.
-- * Keys between tenant tables include organization_id (composite primary keys and foreign keys), so a row can
--   never point at another tenant's row, and the schema stays ready for distribution by organization_id.
-- * Domain rules every writer must obey live here as constraints and triggers: one open session per
--   employee (a partial unique index), a session closes once, an expense is reviewed once.
-- Locks: only creates objects; run on an empty database.

-- Roles are cluster-wide, so several databases (e.g. test databases) can share them: create when missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_api') THEN
        CREATE ROLE fieldtrack_api NOLOGIN NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_analyst') THEN
        CREATE ROLE fieldtrack_analyst NOLOGIN NOBYPASSRLS;
    END IF;
    -- The role a production DATABASE_URL for `serve` logs in as: it can do nothing but switch to
    -- fieldtrack_api (NOINHERIT). No password until an operator sets one.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_authenticator') THEN
        CREATE ROLE fieldtrack_authenticator LOGIN NOINHERIT NOBYPASSRLS;
    END IF;
    -- The migrating role must be able to switch to fieldtrack_api too (make run serves as the owner).
    EXECUTE format('GRANT fieldtrack_api TO %I', current_user);
END
$$;

GRANT fieldtrack_api TO fieldtrack_authenticator;

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
GRANT USAGE ON SCHEMA app TO fieldtrack_api, fieldtrack_analyst;

-- Claim readers. Each request sets these with set_config(..., true) inside its transaction; outside a
-- request they are NULL, so every policy below matches nothing.
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

CREATE FUNCTION app.set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- organizations -------------------------------------------------------------------------------------------

CREATE TABLE organizations (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    slug       text        UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

-- users: the identity provider's users (id = JWT sub) with their organization and role.

CREATE TABLE users (
    organization_id uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    email           text        NOT NULL,
    role            text        NOT NULL CHECK (role IN ('ADMIN', 'EMPLOYEE')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

-- employees -----------------------------------------------------------------------------------------------

CREATE TABLE employees (
    organization_id  uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id          uuid,
    name             text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    employee_code    text        NOT NULL CHECK (length(btrim(employee_code)) BETWEEN 1 AND 64),
    employee_number  integer,
    phone            text        CHECK (length(phone) <= 40),
    is_active        boolean     NOT NULL DEFAULT true,
    last_activity_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT employees_code_key UNIQUE (organization_id, employee_code),
    CONSTRAINT employees_user_key UNIQUE (organization_id, user_id),
    CONSTRAINT employees_user_fkey FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id)
);

CREATE INDEX employees_number_code ON employees (organization_id, employee_number, employee_code);

-- Per-organization counters behind generated employee codes (EMP0001, EMP0002, ...). Not granted to the
-- API role: only the SECURITY DEFINER trigger below touches it.
CREATE TABLE app.employee_code_counters (
    organization_id uuid   PRIMARY KEY REFERENCES organizations ON DELETE CASCADE,
    last_value      bigint NOT NULL
);

-- Fills employee_code when it is missing (next free EMPnnnn of the organization) and employee_number from
-- the first run of digits in the code, which orders employee lists the way people count them.
CREATE FUNCTION app.employees_fill_code() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    n bigint;
BEGIN
    IF NEW.employee_code IS NULL OR btrim(NEW.employee_code) = '' THEN
        LOOP
            INSERT INTO app.employee_code_counters AS c (organization_id, last_value)
                VALUES (NEW.organization_id, 1)
                ON CONFLICT (organization_id) DO UPDATE SET last_value = c.last_value + 1
                RETURNING last_value INTO n;
            NEW.employee_code := 'EMP' || lpad(n::text, 4, '0');
            EXIT WHEN NOT EXISTS (
                SELECT FROM employees e
                WHERE e.organization_id = NEW.organization_id AND e.employee_code = NEW.employee_code);
        END LOOP;
    END IF;
    -- Nine digits always fit an integer; longer runs leave the number empty rather than fail the insert.
    NEW.employee_number := substring(NEW.employee_code FROM '[0-9]{1,9}')::integer;
    RETURN NEW;
END
$$;

CREATE TRIGGER employees_fill_code BEFORE INSERT OR UPDATE OF employee_code ON employees
    FOR EACH ROW EXECUTE FUNCTION app.employees_fill_code();
CREATE TRIGGER employees_updated_at BEFORE UPDATE ON employees
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

-- attendance_sessions -------------------------------------------------------------------------------------

CREATE TABLE attendance_sessions (
    organization_id               uuid             NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id                            uuid             NOT NULL DEFAULT gen_random_uuid(),
    employee_id                   uuid             NOT NULL,
    checkin_at                    timestamptz      NOT NULL DEFAULT now(),
    checkout_at                   timestamptz,
    distance_recalculation_status text             NOT NULL DEFAULT 'pending'
        CHECK (distance_recalculation_status IN ('pending', 'processing', 'done', 'failed')),
    total_distance_km             double precision,
    total_duration_seconds        integer,
    created_at                    timestamptz      NOT NULL DEFAULT now(),
    updated_at                    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT attendance_sessions_employee_fkey FOREIGN KEY (organization_id, employee_id)
        REFERENCES employees (organization_id, id) ON DELETE CASCADE,
    -- Target of gps_locations' foreign key: a point's employee is its session's employee.
    CONSTRAINT attendance_sessions_employee_session_key UNIQUE (organization_id, employee_id, id),
    CONSTRAINT attendance_sessions_checkout_after_checkin CHECK (checkout_at IS NULL OR checkout_at >= checkin_at)
);

-- At most one open session per employee, whoever writes (API, SQL console, another service).
CREATE UNIQUE INDEX attendance_sessions_one_active ON attendance_sessions (organization_id, employee_id)
    WHERE checkout_at IS NULL;
CREATE INDEX attendance_sessions_employee_checkin ON attendance_sessions (organization_id, employee_id, checkin_at DESC);
CREATE INDEX attendance_sessions_org_checkin ON attendance_sessions (organization_id, checkin_at DESC);

-- A session is opened by an active employee only.
CREATE FUNCTION app.attendance_sessions_check_in() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM employees e
        WHERE e.organization_id = NEW.organization_id AND e.id = NEW.employee_id AND e.is_active
    ) THEN
        RAISE EXCEPTION 'Cannot check in: this employee is deactivated or does not exist.'
            USING ERRCODE = 'PT403', HINT = 'FORBIDDEN';
    END IF;
    RETURN NEW;
END
$$;

-- The session state machine: identity and check-in time never change; check-out happens once and fixes the
-- duration (check-out minus check-in).
CREATE FUNCTION app.attendance_sessions_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.organization_id <> OLD.organization_id OR NEW.employee_id <> OLD.employee_id
        OR NEW.checkin_at <> OLD.checkin_at THEN
        RAISE EXCEPTION 'A session''s employee and check-in time cannot change.'
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF OLD.checkout_at IS NOT NULL AND NEW.checkout_at IS DISTINCT FROM OLD.checkout_at THEN
        RAISE EXCEPTION 'Session % is already closed.', OLD.id
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF OLD.checkout_at IS NULL AND NEW.checkout_at IS NOT NULL THEN
        NEW.total_duration_seconds := round(extract(epoch FROM NEW.checkout_at - NEW.checkin_at))::integer;
        -- Wait for GPS inserts still in flight for this session (their foreign-key check holds a KEY
        -- SHARE lock until they commit), so the distance computed at check-out includes their points;
        -- inserts that start later wait for the check-out and then count as late points.
        PERFORM FROM attendance_sessions WHERE organization_id = OLD.organization_id AND id = OLD.id FOR UPDATE;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER attendance_sessions_check_in BEFORE INSERT ON attendance_sessions
    FOR EACH ROW EXECUTE FUNCTION app.attendance_sessions_check_in();
CREATE TRIGGER attendance_sessions_guard BEFORE UPDATE ON attendance_sessions
    FOR EACH ROW EXECUTE FUNCTION app.attendance_sessions_guard();
CREATE TRIGGER attendance_sessions_updated_at BEFORE UPDATE ON attendance_sessions
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

-- gps_locations -------------------------------------------------------------------------------------------

-- The primary key is the deduplication key: a point is identified by its session and its fix time, so a
-- point uploaded twice is stored once. It is the table's only index, which keeps ingest cheap.
CREATE TABLE gps_locations (
    organization_id uuid             NOT NULL,
    session_id      uuid             NOT NULL,
    recorded_at     timestamptz      NOT NULL,
    id              uuid             NOT NULL DEFAULT gen_random_uuid(),
    employee_id     uuid             NOT NULL,
    latitude        double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude       double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    accuracy        double precision CHECK (accuracy >= 0),
    sequence_number integer          CHECK (sequence_number >= 0),
    created_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, session_id, recorded_at),
    CONSTRAINT gps_locations_session_fkey FOREIGN KEY (organization_id, employee_id, session_id)
        REFERENCES attendance_sessions (organization_id, employee_id, id) ON DELETE CASCADE
);

-- expenses ------------------------------------------------------------------------------------------------

CREATE TABLE expenses (
    organization_id   uuid          NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id                uuid          NOT NULL DEFAULT gen_random_uuid(),
    employee_id       uuid          NOT NULL,
    amount            numeric(12,2) NOT NULL CHECK (amount > 0),
    description       text          NOT NULL CHECK (length(description) BETWEEN 3 AND 500),
    status            text          NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    receipt_url       text,
    rejection_comment text          CHECK (length(rejection_comment) <= 1000),
    idempotency_key   text          CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    submitted_at      timestamptz   NOT NULL DEFAULT now(),
    reviewed_at       timestamptz,
    -- Who reviewed: a user id, or "api_key:<id>" when an integration approved it.
    reviewed_by       text,
    created_at        timestamptz   NOT NULL DEFAULT now(),
    updated_at        timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT expenses_employee_fkey FOREIGN KEY (organization_id, employee_id)
        REFERENCES employees (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT expenses_idempotency_key_key UNIQUE (organization_id, employee_id, idempotency_key),
    -- coalesce: a NULL comment must fail the check too (a CHECK that evaluates to NULL passes).
    CONSTRAINT expenses_rejection_needs_comment
        CHECK (status <> 'REJECTED' OR coalesce(length(btrim(rejection_comment)), 0) > 0)
);

CREATE INDEX expenses_employee_submitted ON expenses (organization_id, employee_id, submitted_at DESC);
CREATE INDEX expenses_status_submitted ON expenses (organization_id, status, submitted_at DESC);

-- An expense is reviewed once: PENDING -> APPROVED | REJECTED, and what was submitted never changes.
CREATE FUNCTION app.expenses_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.organization_id <> OLD.organization_id OR NEW.employee_id <> OLD.employee_id
        OR NEW.amount <> OLD.amount OR NEW.description <> OLD.description
        OR NEW.submitted_at <> OLD.submitted_at THEN
        RAISE EXCEPTION 'A submitted expense cannot be changed.'
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF OLD.status <> 'PENDING' AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'Expense has already been %. Only PENDING expenses can be actioned.', lower(OLD.status)
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER expenses_guard BEFORE UPDATE ON expenses
    FOR EACH ROW EXECUTE FUNCTION app.expenses_guard();
CREATE TRIGGER expenses_updated_at BEFORE UPDATE ON expenses
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

-- Privileges ----------------------------------------------------------------------------------------------
-- Column lists keep each writer to the columns it owns: an employee can open a session (the database sets
-- the time), close it, add points and file expenses, but never set distance, status or review fields.

GRANT SELECT ON organizations, users TO fieldtrack_api;
GRANT SELECT, INSERT (organization_id, name, employee_code, user_id, phone, is_active),
    UPDATE (name, employee_code, user_id, phone, is_active, last_activity_at) ON employees TO fieldtrack_api;
GRANT SELECT, INSERT (organization_id, employee_id), UPDATE (checkout_at) ON attendance_sessions TO fieldtrack_api;
GRANT SELECT, INSERT ON gps_locations TO fieldtrack_api;
GRANT SELECT, INSERT (organization_id, employee_id, amount, description, receipt_url, idempotency_key),
    UPDATE (status, reviewed_at, reviewed_by, rejection_comment) ON expenses TO fieldtrack_api;

-- Row-level security --------------------------------------------------------------------------------------

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
ALTER TABLE employees ENABLE ROW LEVEL SECURITY;
ALTER TABLE employees FORCE ROW LEVEL SECURITY;
ALTER TABLE attendance_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE attendance_sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE gps_locations ENABLE ROW LEVEL SECURITY;
ALTER TABLE gps_locations FORCE ROW LEVEL SECURITY;
ALTER TABLE expenses ENABLE ROW LEVEL SECURITY;
ALTER TABLE expenses FORCE ROW LEVEL SECURITY;

CREATE POLICY organizations_select ON organizations FOR SELECT TO fieldtrack_api
    USING (id = (SELECT app.org_id()));

CREATE POLICY users_select ON users FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR id = (SELECT app.user_id())));

-- Employees: admins manage their organization's people; an employee sees only itself.
CREATE POLICY employees_select ON employees FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR id = (SELECT app.employee_id())));
CREATE POLICY employees_insert ON employees FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');
CREATE POLICY employees_update ON employees FOR UPDATE TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN')
    WITH CHECK (organization_id = (SELECT app.org_id()));

-- Sessions: an employee opens and closes its own; an admin reads all and may close any (force check-out).
CREATE POLICY attendance_sessions_select ON attendance_sessions FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY attendance_sessions_insert ON attendance_sessions FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND employee_id = (SELECT app.employee_id()));
CREATE POLICY attendance_sessions_update ON attendance_sessions FOR UPDATE TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())))
    WITH CHECK (organization_id = (SELECT app.org_id()));

-- GPS points: written by their employee only, read by that employee and the organization's admins.
CREATE POLICY gps_locations_select ON gps_locations FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY gps_locations_insert ON gps_locations FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND employee_id = (SELECT app.employee_id()));

-- Expenses: an employee files its own, always PENDING and unreviewed; only admins review.
CREATE POLICY expenses_select ON expenses FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY expenses_insert ON expenses FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND employee_id = (SELECT app.employee_id())
        AND status = 'PENDING' AND reviewed_at IS NULL AND reviewed_by IS NULL);
CREATE POLICY expenses_update ON expenses FOR UPDATE TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN')
    WITH CHECK (organization_id = (SELECT app.org_id()));
