-- 000031 identity keyed by organization, and the side effects of the tables Citus copies to every node
-- done once (issue 15). On a single node the same results.
--
-- * A refresh token carries its session's organization, and every lookup of a login session names the
--   organization (auth_refresh, prune_sessions): on Citus login sessions are distributed by organization
--   with the rest of the organization's rows (so a deactivation, a new password or a sign-in audits and
--   ends them on the organization's own node), while the refresh tokens, found by their hash alone, are
--   a reference table.
-- * app.on_coordinator() is true on a single node, and on Citus true on the coordinator only
--   (app.citus_distribute makes it so). A trigger of a reference table (organizations, users) fires on
--   every node's copy; the three whose work reaches other tables (users_disabled, organizations_redate,
--   organizations_delete_events) do it from the coordinator's copy alone. organizations_delete_events
--   deletes an organization's events one organization at a time.
-- * app.auth_sign_out's scope is a searched CASE: Citus sends a simple CASE of a parameter (CASE p_scope
--   WHEN 'local' ...) to the shards garbled.
-- Locks: refresh_tokens is rewritten by its new column's backfill (ACCESS EXCLUSIVE, a small table).

ALTER TABLE app.refresh_tokens ADD COLUMN organization_id uuid;
UPDATE app.refresh_tokens t SET organization_id = s.organization_id FROM app.auth_sessions s WHERE s.id = t.session_id;
ALTER TABLE app.refresh_tokens ALTER COLUMN organization_id SET NOT NULL;

CREATE FUNCTION app.on_coordinator() RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT true $$;
GRANT EXECUTE ON FUNCTION app.on_coordinator() TO fieldtrack_owner, fieldtrack_api, fieldtrack_worker, fieldtrack_issuer;

CREATE OR REPLACE FUNCTION app.auth_open_session(p_org uuid, p_user uuid, p_ttl bigint, p_user_agent text, OUT session_id uuid, OUT refresh_token text)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
BEGIN
    INSERT INTO app.auth_sessions (organization_id, user_id, user_agent)
    VALUES (p_org, p_user, left(p_user_agent, 300))
    RETURNING id INTO session_id;
    refresh_token := app.new_token(gen_random_bytes(32));
    INSERT INTO app.refresh_tokens (token_hash, organization_id, session_id, expires_at)
    VALUES (digest(refresh_token, 'sha256'), p_org, session_id, now() + make_interval(secs => p_ttl));
    UPDATE users SET last_sign_in_at = now() WHERE organization_id = p_org AND id = p_user;
END
$function$;

CREATE OR REPLACE FUNCTION app.auth_refresh(p_token text, p_ttl bigint, p_grace bigint, OUT outcome text, OUT session_id uuid, OUT refresh_token text, OUT organization_id uuid, OUT user_id uuid, OUT email text, OUT role text, OUT employee_id uuid, OUT created_at timestamp with time zone, OUT last_sign_in_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
DECLARE
    t record;
    s record;
    a record;
BEGIN
    outcome := 'ended';
    SELECT * INTO t FROM app.refresh_tokens r WHERE r.token_hash = digest(p_token, 'sha256') FOR UPDATE;
    IF NOT FOUND OR t.expires_at <= now() THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM app.auth_sessions x WHERE x.organization_id = t.organization_id AND x.id = t.session_id FOR UPDATE;
    IF s.revoked_at IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT * INTO a FROM app.auth_account_of(s.organization_id, s.user_id);
    IF a.user_id IS NULL OR NOT app.auth_may_sign_in(a.disabled, a.role, a.employee_active) THEN
        UPDATE app.auth_sessions x SET revoked_at = now(), revoked_reason = 'refused'
         WHERE x.organization_id = s.organization_id AND x.id = s.id;
        outcome := 'refused';
        RETURN;
    END IF;
    IF t.rotated_at IS NOT NULL AND t.rotated_at < now() - make_interval(secs => p_grace) THEN
        UPDATE app.auth_sessions x SET revoked_at = now(), revoked_reason = 'reuse'
         WHERE x.organization_id = s.organization_id AND x.id = s.id;
        outcome := 'reused';
        RETURN;
    END IF;
    refresh_token := app.new_token(hmac(convert_to(p_token, 'UTF8'), (SELECT k.key FROM app.refresh_token_key k), 'sha256'));
    IF t.rotated_at IS NULL THEN
        UPDATE app.refresh_tokens r SET rotated_at = now() WHERE r.token_hash = t.token_hash;
        INSERT INTO app.refresh_tokens (token_hash, organization_id, session_id, expires_at)
        VALUES (digest(refresh_token, 'sha256'), s.organization_id, s.id, now() + make_interval(secs => p_ttl));
        UPDATE app.auth_sessions x SET refreshed_at = now() WHERE x.organization_id = s.organization_id AND x.id = s.id;
        outcome := 'rotated';
    ELSE
        outcome := 'replayed';
    END IF;
    session_id := s.id;
    organization_id := a.organization_id;
    user_id := a.user_id;
    email := a.email;
    role := a.role;
    employee_id := CASE WHEN a.employee_active THEN a.employee_id END;
    created_at := a.created_at;
    last_sign_in_at := a.last_sign_in_at;
END
$function$;

CREATE OR REPLACE FUNCTION app.prune_sessions()
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
DECLARE
    n integer;
BEGIN
    DELETE FROM app.refresh_tokens WHERE expires_at < now() - interval '1 day';
    DELETE FROM app.auth_sessions s WHERE s.revoked_at < now() - interval '1 day'
        OR NOT EXISTS (SELECT FROM app.refresh_tokens t
                        WHERE t.organization_id = s.organization_id AND t.session_id = s.id);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$function$;

CREATE OR REPLACE FUNCTION app.users_disabled()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
BEGIN
    IF NOT app.on_coordinator() THEN
        RETURN NULL; -- a Citus worker's copy: the coordinator's does it
    END IF;
    UPDATE app.auth_sessions SET revoked_at = now(), revoked_reason = 'disabled'
     WHERE organization_id = NEW.organization_id AND user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION app.organizations_redate()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
BEGIN
    IF NOT app.on_coordinator() THEN
        RETURN NULL; -- a Citus worker's copy: the coordinator's does it
    END IF;
    -- (A session or expense written concurrently under the old zone may land on its old day until the
    -- next reconciliation.)
    DELETE FROM public.employee_daily_metrics d WHERE d.organization_id = NEW.id;
    INSERT INTO public.employee_daily_metrics AS d SELECT * FROM app.expected_employee_daily_metrics(NEW.id)
    ON CONFLICT (organization_id, employee_id, date) DO UPDATE
       SET sessions = excluded.sessions, distance_km = excluded.distance_km,
           duration_seconds = excluded.duration_seconds, expenses_count = excluded.expenses_count,
           expenses_amount = excluded.expenses_amount, updated_at = excluded.updated_at;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION app.organizations_delete_events()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
DECLARE
    o uuid;
BEGIN
    IF NOT app.on_coordinator() THEN
        RETURN NULL; -- a Citus worker's copy: the coordinator's does it
    END IF;
    -- an organization at a time: on Citus each is one shard's DELETE
    FOR o IN SELECT d.id FROM old_organizations d LOOP
        DELETE FROM public.webhook_events e WHERE e.organization_id = o;
    END LOOP;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION app.auth_sign_out(p_org uuid, p_user uuid, p_session uuid, p_scope text)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
DECLARE
    n integer;
BEGIN
    UPDATE app.auth_sessions s SET revoked_at = now(), revoked_reason = 'logout'
     WHERE s.organization_id = p_org AND s.user_id = p_user AND s.revoked_at IS NULL
       AND CASE WHEN p_scope = 'local' THEN s.id = p_session
                WHEN p_scope = 'others' THEN s.id IS DISTINCT FROM p_session
                ELSE true END;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$function$;
