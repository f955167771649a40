-- 000016 API keys, the audit log and what a security review found.
--
-- Why:
-- * API keys are stored as the SHA-256 of the key: a key is 192 random bits, so no slow KDF is needed and
--   a lookup is one index probe. Authentication finds the key once per process (app.api_key_lookup, the
--   only way the API role sees a key it does not know the organization of); every request transaction
--   then checks the key is still active and holds the route's scope in app.check_caller, so a revocation
--   or a narrower scope counts at once on every server process. Request and error counters are added up
--   in each process and written in batches (app.api_key_usage), not once per request.
-- * Keys never manage keys: writes to api_keys need a user (a JWT caller), which an API key is not.
-- * The audit log is written by triggers on the rows admins change (employees, expenses, sessions,
--   webhooks, deliveries, keys, monitoring, recalculations, the outbox's test events) in the same
--   transaction, only when the request's caller is an ADMIN (an employee's own check-out, the worker's
--   bookkeeping and the usage flush are not admin actions), with the changed fields as the payload.
--   Sign-ins and sign-outs are logged from the sessions table. The API role may only read its
--   organization's rows; nobody updates an audit row, and the definer functions' owner cannot delete one.
-- * The SECURITY DEFINER functions are owned by fieldtrack_owner, which bypasses row-level security (they
--   need it) but is not a superuser: code that ever ran as their owner could read rows, not take over the
--   cluster. With pg_temp last in their search_path (000013) and TEMPORARY revoked from PUBLIC, a session
--   cannot shadow a table they use with a temporary one either.
-- * The event listener logs in as its own role, fieldtrack_listener: it needs REPLICATION, and a login with
--   REPLICATION could read every tenant's changes through a slot, so that login must not also be able to
--   switch to fieldtrack_api. It may switch to fieldtrack_worker, the role of the listener's hand-off.
--   No password until an operator sets one (like fieldtrack_authenticator).
-- * fieldtrack_authenticator, the production login of serve, gets USAGE on schema app: pgx prepares a
--   request's statements before the batch that switches the role runs, and without USAGE the names of
--   schema app do not resolve for the login itself.
-- * SSE ids are opaque: a stream position encrypted with app.stream_keys' key (shared by every server
--   process), so an admin cannot count other tenants' events from the ids it sees.
-- Locks: creates objects; re-owns functions (no table rewrite).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_listener') THEN
        CREATE ROLE fieldtrack_listener LOGIN NOINHERIT NOBYPASSRLS;
    END IF;
    -- Only a superuser can give REPLICATION. Roles are cluster-wide: a role that has it is left alone, so
    -- databases migrating at once do not update its row together.
    IF (SELECT rolreplication FROM pg_roles WHERE rolname = 'fieldtrack_listener') THEN
        NULL;
    ELSIF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER ROLE fieldtrack_listener REPLICATION;
    ELSE
        RAISE NOTICE 'fieldtrack_listener needs REPLICATION: ALTER ROLE fieldtrack_listener REPLICATION (as a superuser)';
    END IF;
END
$$;
GRANT fieldtrack_worker TO fieldtrack_listener;

-- A request's statements are parsed before the batch that opens its transaction has switched the role:
-- the logins that switch must be able to look up names in schema app (USAGE alone reads nothing).
GRANT USAGE ON SCHEMA app TO fieldtrack_authenticator, fieldtrack_listener;

CREATE TABLE app.stream_keys (
    id         smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    key        bytea NOT NULL DEFAULT gen_random_bytes(32) CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO app.stream_keys DEFAULT VALUES;
GRANT SELECT ON app.stream_keys TO fieldtrack_worker;

-- API keys ------------------------------------------------------------------------------------------------

CREATE TABLE api_keys (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    name            text NOT NULL,
    key_hash        bytea NOT NULL,
    key_prefix      text NOT NULL,
    key_last4       text NOT NULL,
    scopes          text[] NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    request_count   bigint NOT NULL DEFAULT 0,
    error_count     bigint NOT NULL DEFAULT 0,
    created_by      uuid,
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT api_keys_name_len CHECK (length(name) BETWEEN 3 AND 64),
    CONSTRAINT api_keys_scope_values CHECK (cardinality(scopes) >= 1
        AND scopes <@ ARRAY['read:employees', 'read:sessions', 'write:expenses', 'admin:all']),
    CONSTRAINT api_keys_admin_scope_exclusive CHECK (NOT 'admin:all' = ANY (scopes) OR cardinality(scopes) = 1),
    CONSTRAINT api_keys_hash_len CHECK (length(key_hash) = 32),
    CONSTRAINT api_keys_revoked CHECK (active = (revoked_at IS NULL))
);
-- Not unique: two keys never share a SHA-256, and a unique index without organization_id could not be
-- distributed by organization.
CREATE INDEX api_keys_hash ON api_keys (key_hash);
CREATE INDEX api_keys_org_created ON api_keys (organization_id, created_at DESC);

CREATE TRIGGER api_keys_updated_at BEFORE UPDATE OF name, scopes, active ON api_keys
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT (organization_id, name, key_hash, key_prefix, key_last4, scopes, created_by),
    UPDATE (name, scopes, active, revoked_at), DELETE ON api_keys TO fieldtrack_api;
CREATE POLICY api_keys_admin_select ON api_keys FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');
-- Writes need a user: an API key's request has none.
CREATE POLICY api_keys_admin_insert ON api_keys FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN'
                AND (SELECT app.user_id()) IS NOT NULL);
CREATE POLICY api_keys_admin_update ON api_keys FOR UPDATE TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN'
           AND (SELECT app.user_id()) IS NOT NULL);
CREATE POLICY api_keys_admin_delete ON api_keys FOR DELETE TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN'
           AND (SELECT app.user_id()) IS NOT NULL);

-- app.api_key_lookup finds an active key by its hash, whatever its organization: authentication, before
-- the caller's organization is known.
CREATE FUNCTION app.api_key_lookup(p_hash bytea)
    RETURNS TABLE (id uuid, organization_id uuid, scopes text[])
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
        SELECT k.id, k.organization_id, k.scopes FROM public.api_keys k
         WHERE k.key_hash = p_hash AND k.active
    $$;
REVOKE ALL ON FUNCTION app.api_key_lookup(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.api_key_lookup(bytea) TO fieldtrack_api;

-- app.api_key_usage adds what a process counted since its last flush (one row per key).
CREATE FUNCTION app.api_key_usage(p_orgs uuid[], p_ids uuid[], p_requests bigint[], p_errors bigint[],
                                  p_last timestamptz[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
        UPDATE public.api_keys k
           SET request_count = k.request_count + u.requests,
               error_count   = k.error_count + u.errors,
               last_used_at  = greatest(k.last_used_at, u.last)
          FROM unnest(p_orgs, p_ids, p_requests, p_errors, p_last) AS u (org, id, requests, errors, last)
         WHERE k.organization_id = u.org AND k.id = u.id
    $$;
REVOKE ALL ON FUNCTION app.api_key_usage(uuid[], uuid[], bigint[], bigint[], timestamptz[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.api_key_usage(uuid[], uuid[], bigint[], bigint[], timestamptz[]) TO fieldtrack_worker;

-- app.check_caller also checks an API key (still active, holding the route's scope). The 4-argument calls
-- keep working through the defaults.
DROP FUNCTION app.check_caller(uuid, uuid, uuid, uuid);
CREATE FUNCTION app.check_caller(p_org uuid, p_user uuid, p_employee uuid, p_session uuid,
                                 p_key uuid DEFAULT NULL, p_scope text DEFAULT NULL)
    RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
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
$$;
REVOKE ALL ON FUNCTION app.check_caller(uuid, uuid, uuid, uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.check_caller(uuid, uuid, uuid, uuid, uuid, text) TO fieldtrack_api;

-- The audit log ---------------------------------------------------------------------------------------------

CREATE TABLE admin_audit_log (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    -- clock_timestamp: rows of one transaction keep their order, and the "before" cursor tells them apart.
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    event           text NOT NULL,
    actor_type      text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
    actor_id        uuid,
    resource_type   text NOT NULL,
    resource_id     text,
    payload         jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX admin_audit_log_org_created ON admin_audit_log (organization_id, created_at DESC, id DESC);
CREATE INDEX admin_audit_log_org_event ON admin_audit_log (organization_id, event, created_at DESC);

ALTER TABLE admin_audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE admin_audit_log FORCE ROW LEVEL SECURITY;
GRANT SELECT ON admin_audit_log TO fieldtrack_api;
CREATE POLICY admin_audit_log_admin_select ON admin_audit_log FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');

-- Audit rows are never changed, not even by their owner.
CREATE FUNCTION app.audit_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows cannot be changed' USING ERRCODE = '42501';
END
$$;
CREATE TRIGGER admin_audit_log_immutable BEFORE UPDATE ON admin_audit_log
    FOR EACH ROW EXECUTE FUNCTION app.audit_immutable();

-- app.audit writes one row for the current request's caller in its organization: a user (a JWT caller
-- always has one), else the API key the claims name, else the system. Only the triggers below call it:
-- the API role cannot write audit rows of its own choosing.
CREATE FUNCTION app.audit(p_event text, p_resource_type text, p_resource_id text, p_payload jsonb DEFAULT '{}')
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    v_user uuid := app.user_id();
    v_key uuid;
BEGIN
    IF app.org_id() IS NULL THEN
        RETURN;
    END IF;
    IF v_user IS NULL THEN
        v_key := nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'api_key_id';
    END IF;
    INSERT INTO public.admin_audit_log (organization_id, event, actor_type, actor_id, resource_type, resource_id, payload)
    VALUES (app.org_id(), p_event,
            CASE WHEN v_user IS NOT NULL THEN 'user' WHEN v_key IS NOT NULL THEN 'api_key' ELSE 'system' END,
            coalesce(v_user, v_key), p_resource_type, nullif(p_resource_id, ''), coalesce(p_payload, '{}'));
END
$$;
REVOKE ALL ON FUNCTION app.audit(text, text, text, jsonb) FROM PUBLIC;

-- app.audit_changes is what changed between two versions of a row: {"field": {"old": .., "new": ..}}, without
-- bookkeeping columns, with secrets shown only as changed, and a URL without its query and fragment
-- (where a receiver's token would be).
CREATE FUNCTION app.audit_changes(p_old jsonb, p_new jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT coalesce(jsonb_object_agg(k,
                   CASE WHEN k IN ('secret', 'key_hash')
                        THEN jsonb_build_object('changed', true)
                        WHEN k = 'url'
                        THEN jsonb_strip_nulls(jsonb_build_object(
                                 'old', to_jsonb(regexp_replace(p_old ->> k, '[?#].*$', '')),
                                 'new', to_jsonb(regexp_replace(p_new ->> k, '[?#].*$', ''))))
                        ELSE jsonb_strip_nulls(jsonb_build_object('old', p_old -> k, 'new', p_new -> k)) END), '{}')
          FROM (SELECT jsonb_object_keys(coalesce(p_old, '{}') || coalesce(p_new, '{}')) AS k) keys
         WHERE k NOT IN ('organization_id', 'created_at', 'updated_at', 'last_activity_at', 'request_count',
                         'error_count', 'last_used_at', 'idempotency_fingerprint', 'key_prefix', 'key_last4')
           AND coalesce(p_old -> k, 'null') IS DISTINCT FROM coalesce(p_new -> k, 'null')
    $$;

-- The row trigger: event and resource type are its arguments; a row whose update changed nothing that
-- matters writes nothing, unless the third argument is 'always' (a recalculation is an action even when
-- the distance comes out the same). Only an ADMIN's request is audited.
CREATE FUNCTION app.audit_trigger() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    v_old jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    v_new jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    v_changes jsonb;
BEGIN
    IF app.role() IS DISTINCT FROM 'ADMIN' THEN
        RETURN NULL;
    END IF;
    v_changes := app.audit_changes(v_old, v_new);
    IF TG_OP = 'UPDATE' AND v_changes = '{}' AND TG_ARGV[2] IS DISTINCT FROM 'always' THEN
        RETURN NULL;
    END IF;
    PERFORM app.audit(TG_ARGV[0], TG_ARGV[1], coalesce(v_new, v_old) ->> 'id', jsonb_build_object('changes', v_changes));
    RETURN NULL;
END
$$;

CREATE TRIGGER employees_audit_created AFTER INSERT ON employees
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('employee.created', 'employee');
CREATE TRIGGER employees_audit_status AFTER UPDATE OF is_active ON employees
    FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION app.audit_trigger('employee.status_changed', 'employee');
CREATE TRIGGER employees_audit_updated AFTER UPDATE ON employees
    FOR EACH ROW WHEN (OLD.is_active IS NOT DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION app.audit_trigger('employee.updated', 'employee');
CREATE TRIGGER expenses_audit_reviewed AFTER UPDATE OF status ON expenses
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION app.audit_trigger('expense.reviewed', 'expense');
CREATE TRIGGER attendance_sessions_audit_checkout AFTER UPDATE OF checkout_at ON attendance_sessions
    FOR EACH ROW WHEN (OLD.checkout_at IS NULL AND NEW.checkout_at IS NOT NULL)
    EXECUTE FUNCTION app.audit_trigger('session.force_checkout', 'session');
-- app.recalculate_session writes exactly these columns (a check-out's own measure is its BEFORE trigger's).
CREATE TRIGGER attendance_sessions_audit_recalculated
    AFTER UPDATE OF total_distance_km, total_duration_seconds, distance_recalculation_status ON attendance_sessions
    FOR EACH ROW WHEN (OLD.checkout_at IS NOT DISTINCT FROM NEW.checkout_at)
    EXECUTE FUNCTION app.audit_trigger('session.recalculated', 'session', 'always');
-- The synthetic event of POST /admin/webhooks/{id}/test (the outbox's other rows skip the trigger in
-- its WHEN, without a call).
CREATE TRIGGER webhook_events_audit_tested AFTER INSERT ON webhook_events
    FOR EACH ROW WHEN (NEW.event_type = 'webhook.test')
    EXECUTE FUNCTION app.audit_trigger('webhook.tested', 'webhook_event');
CREATE TRIGGER webhooks_audit_created AFTER INSERT ON webhooks
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('webhook.created', 'webhook');
CREATE TRIGGER webhooks_audit_updated AFTER UPDATE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('webhook.updated', 'webhook');
CREATE TRIGGER webhooks_audit_deleted AFTER DELETE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('webhook.deleted', 'webhook');
CREATE TRIGGER webhook_deliveries_audit_retried AFTER UPDATE OF status, next_retry_at ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('webhook_delivery.retried', 'webhook_delivery');
CREATE TRIGGER api_keys_audit_created AFTER INSERT ON api_keys
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('api_key.created', 'api_key');
CREATE TRIGGER api_keys_audit_revoked AFTER UPDATE OF active ON api_keys
    FOR EACH ROW WHEN (OLD.active AND NOT NEW.active)
    EXECUTE FUNCTION app.audit_trigger('api_key.revoked', 'api_key');
CREATE TRIGGER api_keys_audit_updated AFTER UPDATE ON api_keys
    FOR EACH ROW WHEN (NOT (OLD.active AND NOT NEW.active))
    EXECUTE FUNCTION app.audit_trigger('api_key.updated', 'api_key');
CREATE TRIGGER api_keys_audit_deleted AFTER DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('api_key.deleted', 'api_key');
CREATE TRIGGER admin_sessions_audit_started AFTER INSERT ON admin_sessions
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('monitoring.started', 'monitoring_session');
CREATE TRIGGER admin_sessions_audit_stopped AFTER UPDATE OF ended_at ON admin_sessions
    FOR EACH ROW WHEN (OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL)
    EXECUTE FUNCTION app.audit_trigger('monitoring.stopped', 'monitoring_session');

-- Sign-ins and sign-outs run without request claims (the issuer's functions): the session's user is the
-- actor.
CREATE FUNCTION app.audit_auth_session() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
BEGIN
    INSERT INTO public.admin_audit_log (organization_id, event, actor_type, actor_id, resource_type, resource_id, payload)
    VALUES (NEW.organization_id, TG_ARGV[0], 'user', NEW.user_id, 'auth_session', NEW.id::text,
            jsonb_strip_nulls(jsonb_build_object('user_agent', NEW.user_agent)));
    RETURN NULL;
END
$$;
CREATE TRIGGER auth_sessions_audit_login AFTER INSERT ON app.auth_sessions
    FOR EACH ROW EXECUTE FUNCTION app.audit_auth_session('auth.login');
CREATE TRIGGER auth_sessions_audit_logout AFTER UPDATE OF revoked_at ON app.auth_sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND NEW.revoked_reason = 'logout')
    EXECUTE FUNCTION app.audit_auth_session('auth.logout');

-- The definer functions' owner ------------------------------------------------------------------------------

-- fieldtrack_owner owns every SECURITY DEFINER function of ours. It bypasses row-level security (the
-- functions read and write across the policies) and holds the table privileges they need, nothing more:
-- not a superuser, no login. Only a superuser can make it so; a migration run by a BYPASSRLS role that is
-- not one leaves the functions with that role, which is already no superuser.
DO $$
DECLARE
    f regprocedure;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'not a superuser: the SECURITY DEFINER functions stay owned by %', current_user;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_owner') THEN
        CREATE ROLE fieldtrack_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT BYPASSRLS;
    END IF;
    GRANT USAGE ON SCHEMA app TO fieldtrack_owner;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, app TO fieldtrack_owner;
    GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public, app TO fieldtrack_owner;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA app TO fieldtrack_owner;
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public, app '
                   'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO fieldtrack_owner', current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public, app '
                   'GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO fieldtrack_owner', current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA app '
                   'GRANT EXECUTE ON FUNCTIONS TO fieldtrack_owner', current_user);
    -- It writes audit rows (the triggers) but never changes or removes one.
    REVOKE UPDATE, DELETE ON admin_audit_log FROM fieldtrack_owner;
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.prosecdef AND p.pronamespace IN ('app'::regnamespace, 'public'::regnamespace)
                AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                   AND d.objid = p.oid AND d.deptype = 'e') LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO fieldtrack_owner', f);
    END LOOP;
END
$$;

-- No temporary tables for anyone but the roles granted them explicitly (none of ours need one).
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
