-- 000008 an employee's life: deactivation, last activity, and the state lists show.
--
-- Why: a deactivated employee can no longer work, whatever token it still holds: deactivation closes its
-- open session (a real check-out, with distance and events), it cannot check in (000005), send fixes
-- (app.locations_session, replaced here) or file expenses (000009). last_activity_at is the time of its
-- latest check-in, check-out or expense, kept by those writes (fixes do not touch it: they are the hot
-- path). app.employee_states is an employee as the admin lists show it, with its latest session's state.
-- Locks: replaces one function and adds triggers on employees, attendance_sessions; no table rewrite.

-- Deactivation closes the open session as a check-out would (distance, duration, session.checkout).
CREATE FUNCTION app.employees_deactivated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    UPDATE attendance_sessions SET checkout_at = now()
     WHERE organization_id = NEW.organization_id AND employee_id = NEW.id AND checkout_at IS NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER employees_deactivated AFTER UPDATE OF is_active ON employees
    FOR EACH ROW WHEN (OLD.is_active AND NOT NEW.is_active)
    EXECUTE FUNCTION app.employees_deactivated();

-- app.touch_employee records an activity of an active employee at p_at (never moving backwards; the
-- check-out that deactivation forces is not the employee's activity, and leaves the row it came from
-- alone). Runs as the owner: employees may not write their own row.
CREATE FUNCTION app.touch_employee(p_org uuid, p_employee uuid, p_at timestamptz) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
        UPDATE employees SET last_activity_at = p_at
         WHERE organization_id = p_org AND id = p_employee AND is_active
           AND (last_activity_at IS NULL OR last_activity_at < p_at)
    $$;
REVOKE ALL ON FUNCTION app.touch_employee(uuid, uuid, timestamptz) FROM PUBLIC;

CREATE FUNCTION app.attendance_sessions_activity() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    PERFORM app.touch_employee(NEW.organization_id, NEW.employee_id, coalesce(NEW.checkout_at, NEW.checkin_at));
    RETURN NULL;
END
$$;

CREATE TRIGGER attendance_sessions_activity_in AFTER INSERT ON attendance_sessions
    FOR EACH ROW EXECUTE FUNCTION app.attendance_sessions_activity();
CREATE TRIGGER attendance_sessions_activity_out AFTER UPDATE OF checkout_at ON attendance_sessions
    FOR EACH ROW WHEN (OLD.checkout_at IS NULL AND NEW.checkout_at IS NOT NULL)
    EXECUTE FUNCTION app.attendance_sessions_activity();

-- The ingest path's session check, now also refusing a deactivated employee (403): one more primary-key
-- probe, in the same statement as the session's.
CREATE OR REPLACE FUNCTION app.locations_session(p_org uuid, p_session uuid, p_first timestamptz, p_last timestamptz,
                                                 p_plural boolean) RETURNS attendance_sessions
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    s attendance_sessions;
    r record;
BEGIN
    SELECT a AS sess, e.is_active AS active INTO r
      FROM attendance_sessions a
      JOIN employees e ON e.organization_id = a.organization_id AND e.id = a.employee_id
     WHERE a.organization_id = p_org AND a.id = p_session AND a.employee_id = app.employee_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Cannot record %: invalid or closed attendance session.',
            CASE WHEN p_plural THEN 'locations' ELSE 'location' END
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    s := r.sess;
    IF NOT r.active THEN
        RAISE EXCEPTION 'Cannot record %: this employee is deactivated.',
            CASE WHEN p_plural THEN 'locations' ELSE 'location' END
            USING ERRCODE = 'PT403', HINT = 'FORBIDDEN';
    END IF;
    IF p_last > now() + interval '2 minutes' THEN
        RAISE EXCEPTION 'recorded_at cannot be more than 2 minutes in the future'
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF p_first < s.checkin_at THEN
        RAISE EXCEPTION '%', CASE WHEN p_plural
            THEN 'Cannot record locations: one or more points have recorded_at before the session start time.'
            ELSE 'Cannot record location: recorded_at is before the session start time.' END
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF s.checkout_at IS NOT NULL AND p_last > s.checkout_at THEN
        RAISE EXCEPTION '%', CASE WHEN p_plural
            THEN 'Cannot record locations: one or more points have recorded_at after the session end time.'
            ELSE 'Cannot record location: recorded_at is after the session end time.' END
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    RETURN s;
END
$$;

-- An employee with its latest session's state: checked in (an open session), the latest check-in and
-- check-out, the last fix of the latest session, and the activity status (INACTIVE without sessions).
-- Each "latest" is one probe of an index for its key, then a join by primary key.
CREATE VIEW app.employee_states WITH (security_invoker = true) AS
SELECT e.id, e.organization_id, e.user_id, e.name, e.employee_code, e.employee_number, e.phone, e.is_active,
       e.last_activity_at, e.created_at, e.updated_at,
       coalesce(s.id IS NOT NULL AND s.checkout_at IS NULL, false)::boolean AS is_checked_in,
       s.checkin_at AS last_check_in_at,
       c.checkout_at AS last_check_out_at,
       g.latitude AS last_latitude, g.longitude AS last_longitude, g.recorded_at AS last_location_at,
       (CASE WHEN s.id IS NULL THEN 'INACTIVE' ELSE app.activity_status(s.checkout_at) END)::text AS activity_status
  FROM employees e
  LEFT JOIN LATERAL (
      SELECT l.id FROM attendance_sessions l
       WHERE l.organization_id = e.organization_id AND l.employee_id = e.id
       ORDER BY l.checkin_at DESC LIMIT 1
  ) latest ON true
  LEFT JOIN attendance_sessions s ON s.organization_id = e.organization_id AND s.id = latest.id
  LEFT JOIN LATERAL (
      SELECT l.id FROM attendance_sessions l
       WHERE l.organization_id = e.organization_id AND l.employee_id = e.id AND l.checkout_at IS NOT NULL
       ORDER BY l.checkin_at DESC LIMIT 1
  ) closed ON true
  LEFT JOIN attendance_sessions c ON c.organization_id = e.organization_id AND c.id = closed.id
  LEFT JOIN LATERAL (
      SELECT p.recorded_at FROM gps_locations p
       WHERE p.organization_id = e.organization_id AND p.session_id = s.id
       ORDER BY p.recorded_at DESC LIMIT 1
  ) fix ON true
  LEFT JOIN gps_locations g
         ON g.organization_id = e.organization_id AND g.session_id = s.id AND g.recorded_at = fix.recorded_at;

GRANT SELECT ON app.employee_states TO fieldtrack_api;
