-- 000013 identity hardening: what a review of built-in identity found.
--
-- Why:
-- * The owner of these objects must bypass row-level security: the tables FORCE it with policies for the
--   API role only, and the SECURITY DEFINER functions (the caller check, sign-in, the snapshot and
--   distance triggers) run as the owner. An owner that does not bypass it would see no rows there, and a
--   check written as "refuse what I can see" would let everyone through. Refuse to migrate instead.
-- * app.check_caller is one query (three primary-key probes in one plan instead of three statements): it
--   runs before every request. It also binds the session to the caller's organization and user. (A role
--   in the token that differs from the user's row is not refused: an external issuer may grant roles of
--   its own.)
-- * A new password ends the account's sessions; so does deactivating the account's employee (a
--   re-activation does not bring the old sessions back).
-- * Every SECURITY DEFINER function of schema app searches pg_temp last: a temporary table can no longer
--   shadow a table it reads.
-- Locks: replaces functions, adds triggers on app.user_passwords and employees; no table rewrite.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'fieldtrack migrate: the role % must be a superuser or have BYPASSRLS', current_user
            USING HINT = 'ALTER ROLE ' || quote_ident(current_user) || ' BYPASSRLS (as a superuser), then migrate again.';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION app.check_caller(p_org uuid, p_user uuid, p_employee uuid, p_session uuid)
    RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    r record;
BEGIN
    -- Users and sessions another issuer knows (no row here) pass.
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

-- app.end_sessions ends the open sessions of a user, saying why.
CREATE FUNCTION app.end_sessions(p_org uuid, p_user uuid, p_reason text) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
        UPDATE app.auth_sessions SET revoked_at = now(), revoked_reason = p_reason
         WHERE organization_id = p_org AND user_id = p_user AND revoked_at IS NULL
    $$;
REVOKE ALL ON FUNCTION app.end_sessions(uuid, uuid, text) FROM PUBLIC;

-- A row naming a user (its organization_id and user_id) changed so that the user's sessions end; the
-- reason is the trigger's argument.
CREATE FUNCTION app.sessions_end_trigger() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
BEGIN
    PERFORM app.end_sessions(NEW.organization_id, NEW.user_id, TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER user_passwords_changed AFTER UPDATE OF password_hash ON app.user_passwords
    FOR EACH ROW WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash)
    EXECUTE FUNCTION app.sessions_end_trigger('password');

CREATE TRIGGER employees_sessions_ended AFTER UPDATE OF is_active ON employees
    FOR EACH ROW WHEN (OLD.is_active AND NOT NEW.is_active AND NEW.user_id IS NOT NULL)
    EXECUTE FUNCTION app.sessions_end_trigger('deactivated');

-- pg_temp last in every SECURITY DEFINER function of ours that pins a search_path.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'app'::regnamespace AND p.prosecdef
                AND EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
                AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%pg_temp%') LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, app, pg_temp', f);
    END LOOP;
END
$$;
