-- 000005 attendance: work sessions, from check-in to check-out.
--
-- Why: the rules every writer must obey (API, SQL console, another service) live on the table.
-- * At most one open session per employee: a partial unique index.
-- * A session is opened by an active employee only; its employee and check-in time never change; it is
--   closed once. The check-out computes the duration and the distance (app.measure_session, in the GPS
--   file) into the row being written, in one BEFORE trigger that runs these steps in order, so the
--   UPDATE's RETURNING is the complete session and nothing writes the row a second time. The trigger runs
--   as the owner, which may measure; an employee can still only write what its grants allow.
-- * A check-in emits session.checkin and employee.checked_in; a check-out session.checkout and
--   employee.checked_out, carrying the computed distance.
-- * app.sessions is a session as lists show it (with the employee's code and name and the activity
--   status); app.latest_sessions names each employee's latest session, the one definition the admin
--   session list and the live map share.
-- Locks: creates objects only.

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

-- At most one open session per employee, whoever writes.
CREATE UNIQUE INDEX attendance_sessions_one_active ON attendance_sessions (organization_id, employee_id)
    WHERE checkout_at IS NULL;
CREATE INDEX attendance_sessions_employee_checkin ON attendance_sessions (organization_id, employee_id, checkin_at DESC);
CREATE INDEX attendance_sessions_org_checkin ON attendance_sessions (organization_id, checkin_at DESC);

-- The session's life, step by step, before each write of a row.
CREATE FUNCTION app.attendance_sessions_before_write() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- 1. Opened by an active employee only.
        IF NOT EXISTS (
            SELECT FROM employees e
            WHERE e.organization_id = NEW.organization_id AND e.id = NEW.employee_id AND e.is_active
        ) THEN
            RAISE EXCEPTION 'Cannot check in: this employee is deactivated or does not exist.'
                USING ERRCODE = 'PT403', HINT = 'FORBIDDEN';
        END IF;
        -- 2. A session stored already closed (an import, the demo data) is measured like a check-out; its
        -- summary is kept once the row exists (attendance_sessions_stored_closed).
        IF NEW.checkout_at IS NOT NULL THEN
            NEW := app.measure_session(NEW, false);
        END IF;
        RETURN NEW;
    END IF;

    -- 1. Identity and check-in time never change; a closed session stays closed.
    IF NEW.organization_id <> OLD.organization_id OR NEW.employee_id <> OLD.employee_id
        OR NEW.checkin_at <> OLD.checkin_at THEN
        RAISE EXCEPTION 'A session''s employee and check-in time cannot change.'
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF OLD.checkout_at IS NOT NULL AND NEW.checkout_at IS DISTINCT FROM OLD.checkout_at THEN
        RAISE EXCEPTION 'Session % is already closed.', OLD.id
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    -- 2. The check-out: wait for GPS inserts still in flight for this session (their foreign-key check
    -- holds a KEY SHARE lock until they commit), so the distance includes their points; inserts that start
    -- later wait for the check-out and then count as late points. Then measure the session.
    IF OLD.checkout_at IS NULL AND NEW.checkout_at IS NOT NULL THEN
        PERFORM FROM attendance_sessions WHERE organization_id = OLD.organization_id AND id = OLD.id FOR UPDATE;
        NEW := app.measure_session(NEW, true);
    END IF;
    -- 3. The time of the change.
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER attendance_sessions_before_write BEFORE INSERT OR UPDATE ON attendance_sessions
    FOR EACH ROW EXECUTE FUNCTION app.attendance_sessions_before_write();

-- The summary of a session stored already closed, written once the row exists: an INSERT ... ON CONFLICT DO
-- NOTHING that skips the row writes none.
CREATE FUNCTION app.attendance_sessions_stored_closed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    PERFORM app.measure_session(NEW, true);
    RETURN NULL;
END
$$;

CREATE TRIGGER attendance_sessions_stored_closed AFTER INSERT ON attendance_sessions
    FOR EACH ROW WHEN (NEW.checkout_at IS NOT NULL) EXECUTE FUNCTION app.attendance_sessions_stored_closed();

-- Check-ins and check-outs, for webhooks and (session.*, with the session as written) the admin stream.
CREATE FUNCTION app.attendance_sessions_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    data jsonb := jsonb_build_object('employee_id', NEW.employee_id, 'session_id', NEW.id,
                                     'checkin_at', NEW.checkin_at);
    sse  jsonb := jsonb_build_object('sessionId', NEW.id, 'employeeId', NEW.employee_id, 'session', to_jsonb(NEW));
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM app.emit(NEW.organization_id, 'session.checkin', data, 'session.checkin', sse);
        PERFORM app.emit(NEW.organization_id, 'employee.checked_in', data);
    ELSE
        data := data || jsonb_build_object('checkout_at', NEW.checkout_at);
        PERFORM app.emit(NEW.organization_id, 'session.checkout', data, 'session.checkout', sse);
        PERFORM app.emit(NEW.organization_id, 'employee.checked_out', data);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER attendance_sessions_checked_in AFTER INSERT ON attendance_sessions
    FOR EACH ROW EXECUTE FUNCTION app.attendance_sessions_events();
CREATE TRIGGER attendance_sessions_checked_out AFTER UPDATE OF checkout_at ON attendance_sessions
    FOR EACH ROW WHEN (OLD.checkout_at IS NULL AND NEW.checkout_at IS NOT NULL)
    EXECUTE FUNCTION app.attendance_sessions_events();

-- Views (as the caller: row-level security applies) ---------------------------------------------------------

CREATE VIEW app.sessions WITH (security_invoker = true) AS
SELECT s.id, s.employee_id, s.organization_id, s.checkin_at, s.checkout_at, s.total_distance_km,
       s.total_duration_seconds, s.distance_recalculation_status, s.created_at, s.updated_at,
       e.employee_code, e.name AS employee_name,
       app.activity_status(s.checkout_at) AS "activityStatus"
  FROM attendance_sessions s
  JOIN employees e ON e.organization_id = s.organization_id AND e.id = s.employee_id;

-- One probe of the (organization, employee, check-in) index per employee, however long the history.
CREATE VIEW app.latest_sessions WITH (security_invoker = true) AS
SELECT e.organization_id, e.id AS employee_id, l.id AS session_id
  FROM employees e
  CROSS JOIN LATERAL (
      SELECT s.id
        FROM attendance_sessions s
       WHERE s.organization_id = e.organization_id AND s.employee_id = e.id
       ORDER BY s.checkin_at DESC
       LIMIT 1
  ) l;

-- Privileges and row-level security ------------------------------------------------------------------------
-- An employee can open its session (the database sets the time) and close it, never set its distance.

GRANT SELECT, INSERT (organization_id, employee_id), UPDATE (checkout_at) ON attendance_sessions TO fieldtrack_api;
GRANT SELECT ON app.sessions, app.latest_sessions TO fieldtrack_api;

ALTER TABLE attendance_sessions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- An employee opens and closes its own sessions; an admin reads all and may close any (force check-out).
CREATE POLICY attendance_sessions_select ON attendance_sessions FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY attendance_sessions_insert ON attendance_sessions FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND employee_id = (SELECT app.employee_id()));
CREATE POLICY attendance_sessions_update ON attendance_sessions FOR UPDATE TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())))
    WITH CHECK (organization_id = (SELECT app.org_id()));
