-- 000016 reversed: functions back to the migrating role, temporary tables for everyone again.
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
END
$$;
DO $$
DECLARE
    f regprocedure;
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_owner') THEN
        FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
                  WHERE p.proowner = 'fieldtrack_owner'::regrole LOOP
            EXECUTE format('ALTER FUNCTION %s OWNER TO %I', f, current_user);
        END LOOP;
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public, app '
                       'REVOKE ALL ON TABLES FROM fieldtrack_owner', current_user);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public, app '
                       'REVOKE ALL ON SEQUENCES FROM fieldtrack_owner', current_user);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA app '
                       'REVOKE ALL ON FUNCTIONS FROM fieldtrack_owner', current_user);
        REVOKE ALL ON ALL TABLES IN SCHEMA public, app FROM fieldtrack_owner;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public, app FROM fieldtrack_owner;
        REVOKE ALL ON ALL FUNCTIONS IN SCHEMA app FROM fieldtrack_owner;
        REVOKE ALL ON SCHEMA app FROM fieldtrack_owner;
        -- The role is cluster-wide (other databases may use it): it stays.
    END IF;
END
$$;

DROP TRIGGER IF EXISTS auth_sessions_audit_login ON app.auth_sessions;
DROP TRIGGER IF EXISTS auth_sessions_audit_logout ON app.auth_sessions;
DROP FUNCTION IF EXISTS app.audit_auth_session();
DROP TRIGGER IF EXISTS employees_audit_created ON employees;
DROP TRIGGER IF EXISTS employees_audit_status ON employees;
DROP TRIGGER IF EXISTS employees_audit_updated ON employees;
DROP TRIGGER IF EXISTS expenses_audit_reviewed ON expenses;
DROP TRIGGER IF EXISTS attendance_sessions_audit_checkout ON attendance_sessions;
DROP TRIGGER IF EXISTS attendance_sessions_audit_recalculated ON attendance_sessions;
DROP TRIGGER IF EXISTS webhook_events_audit_tested ON webhook_events;
DROP TRIGGER IF EXISTS webhooks_audit_created ON webhooks;
DROP TRIGGER IF EXISTS webhooks_audit_updated ON webhooks;
DROP TRIGGER IF EXISTS webhooks_audit_deleted ON webhooks;
DROP TRIGGER IF EXISTS webhook_deliveries_audit_retried ON webhook_deliveries;
DROP TRIGGER IF EXISTS admin_sessions_audit_started ON admin_sessions;
DROP TRIGGER IF EXISTS admin_sessions_audit_stopped ON admin_sessions;
DROP TABLE IF EXISTS api_keys;
DROP FUNCTION IF EXISTS app.audit_trigger();
DROP FUNCTION IF EXISTS app.audit_changes(jsonb, jsonb);
DROP FUNCTION IF EXISTS app.audit(text, text, text, jsonb);
DROP TABLE IF EXISTS admin_audit_log;
DROP FUNCTION IF EXISTS app.audit_immutable();

DROP FUNCTION IF EXISTS app.check_caller(uuid, uuid, uuid, uuid, uuid, text);
CREATE FUNCTION app.check_caller(p_org uuid, p_user uuid, p_employee uuid, p_session uuid)
    RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    r record;
BEGIN
    SELECT u.disabled_at IS NOT NULL AS disabled,
           coalesce(NOT e.is_active, false) AS deactivated,
           p_session IS NOT NULL AND s.id IS NULL AS ended
      INTO r
      FROM (SELECT) one
      LEFT JOIN public.users u ON u.organization_id = p_org AND u.id = p_user
      LEFT JOIN public.employees e ON e.organization_id = p_org AND e.id = p_employee
      LEFT JOIN app.auth_sessions s
             ON s.id = p_session AND s.organization_id = p_org AND s.user_id = p_user AND s.revoked_at IS NULL;
    IF r.disabled THEN
        RAISE EXCEPTION 'This account is disabled.' USING ERRCODE = 'PT401', HINT = 'ACCOUNT_DISABLED';
    ELSIF r.deactivated THEN
        RAISE EXCEPTION 'This employee is deactivated.' USING ERRCODE = 'PT401', HINT = 'EMPLOYEE_DEACTIVATED';
    ELSIF r.ended THEN
        RAISE EXCEPTION 'Session expired or signed out.' USING ERRCODE = 'PT401', HINT = 'SESSION_ENDED';
    END IF;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION app.check_caller(uuid, uuid, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.check_caller(uuid, uuid, uuid, uuid) TO fieldtrack_api;

DROP FUNCTION IF EXISTS app.api_key_usage(uuid[], uuid[], bigint[], bigint[], timestamptz[]);
DROP FUNCTION IF EXISTS app.api_key_lookup(bytea);
DROP TABLE IF EXISTS app.stream_keys;
REVOKE USAGE ON SCHEMA app FROM fieldtrack_authenticator, fieldtrack_listener;
-- fieldtrack_listener is cluster-wide (other databases may use it): it stays.
