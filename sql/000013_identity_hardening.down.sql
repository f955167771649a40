DROP TRIGGER IF EXISTS employees_sessions_ended ON employees;
DROP TRIGGER IF EXISTS user_passwords_changed ON app.user_passwords;
DROP FUNCTION IF EXISTS app.sessions_end_trigger();
DROP FUNCTION IF EXISTS app.end_sessions(uuid, uuid, text);

-- The caller check as 000012 made it.
CREATE OR REPLACE FUNCTION app.check_caller(p_org uuid, p_user uuid, p_employee uuid, p_session uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    IF EXISTS (SELECT FROM users u WHERE u.organization_id = p_org AND u.id = p_user AND u.disabled_at IS NOT NULL) THEN
        RAISE EXCEPTION 'This account is disabled.' USING ERRCODE = 'PT401', HINT = 'ACCOUNT_DISABLED';
    END IF;
    IF p_employee IS NOT NULL AND EXISTS (SELECT FROM employees e
                                           WHERE e.organization_id = p_org AND e.id = p_employee AND NOT e.is_active) THEN
        RAISE EXCEPTION 'This employee is deactivated.' USING ERRCODE = 'PT401', HINT = 'EMPLOYEE_DEACTIVATED';
    END IF;
    IF p_session IS NOT NULL AND NOT EXISTS (SELECT FROM app.auth_sessions s
                                              WHERE s.id = p_session AND s.revoked_at IS NULL) THEN
        RAISE EXCEPTION 'Session expired or signed out.' USING ERRCODE = 'PT401', HINT = 'SESSION_ENDED';
    END IF;
    RETURN true;
END
$$;
-- The search_path of the definer functions keeps pg_temp last: harmless, and what the code expects.
