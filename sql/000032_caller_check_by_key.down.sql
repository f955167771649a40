-- 000032 reversed: app.check_caller with its outer joins, as 000016 made it.

CREATE OR REPLACE FUNCTION app.check_caller(p_org uuid, p_user uuid, p_employee uuid, p_session uuid, p_key uuid DEFAULT NULL::uuid, p_scope text DEFAULT NULL::text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
DECLARE
    r record;
BEGIN
    -- Only the request's own organization (nobody learns another's users, sessions or keys through it).
    IF p_org IS DISTINCT FROM app.org_id() THEN
        RAISE EXCEPTION 'Invalid or missing authentication token' USING ERRCODE = 'PT401', HINT = 'UNAUTHORIZED';
    END IF;
    -- Users and sessions another issuer knows (no row here) pass.
    SELECT u.disabled_at IS NOT NULL AS disabled,
           coalesce(NOT e.is_active, false) AS deactivated,
           p_session IS NOT NULL AND s.id IS NULL AS ended,
           p_key IS NOT NULL AND k.id IS NULL AS revoked,
           k.scopes
      INTO r
      FROM (SELECT) one
      LEFT JOIN public.users u ON u.organization_id = p_org AND u.id = p_user
      LEFT JOIN public.employees e ON e.organization_id = p_org AND e.id = p_employee
      LEFT JOIN app.auth_sessions s
             ON s.id = p_session AND s.organization_id = p_org AND s.user_id = p_user AND s.revoked_at IS NULL
      LEFT JOIN public.api_keys k ON k.organization_id = p_org AND k.id = p_key AND k.active;
    IF r.disabled THEN
        RAISE EXCEPTION 'This account is disabled.' USING ERRCODE = 'PT401', HINT = 'ACCOUNT_DISABLED';
    ELSIF r.deactivated THEN
        RAISE EXCEPTION 'This employee is deactivated.' USING ERRCODE = 'PT401', HINT = 'EMPLOYEE_DEACTIVATED';
    ELSIF r.ended THEN
        RAISE EXCEPTION 'Session expired or signed out.' USING ERRCODE = 'PT401', HINT = 'SESSION_ENDED';
    ELSIF r.revoked THEN
        RAISE EXCEPTION 'Invalid API key' USING ERRCODE = 'PT401', HINT = 'INVALID_API_KEY';
    ELSIF p_key IS NOT NULL AND p_scope IS NOT NULL AND NOT r.scopes && ARRAY[p_scope, 'admin:all'] THEN
        RAISE EXCEPTION 'API key missing required scope: %', p_scope USING ERRCODE = 'PT403', HINT = 'FORBIDDEN';
    END IF;
    RETURN true;
END
$function$;
