-- 000008 an employee's life, reversed: the ingest check of 000006 comes back.
DROP VIEW IF EXISTS app.employee_states;
DROP TRIGGER IF EXISTS attendance_sessions_activity_out ON attendance_sessions;
DROP TRIGGER IF EXISTS attendance_sessions_activity_in ON attendance_sessions;
DROP FUNCTION IF EXISTS app.attendance_sessions_activity();
DROP FUNCTION IF EXISTS app.touch_employee(uuid, uuid, timestamptz);
DROP TRIGGER IF EXISTS employees_deactivated ON employees;
DROP FUNCTION IF EXISTS app.employees_deactivated();
CREATE OR REPLACE FUNCTION app.locations_session(p_org uuid, p_session uuid, p_first timestamptz, p_last timestamptz,
                                                 p_plural boolean) RETURNS attendance_sessions
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    s attendance_sessions;
BEGIN
    SELECT * INTO s FROM attendance_sessions
     WHERE organization_id = p_org AND id = p_session AND employee_id = app.employee_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Cannot record %: invalid or closed attendance session.',
            CASE WHEN p_plural THEN 'locations' ELSE 'location' END
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
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
