-- 000012 built-in identity: passwords, sessions with rotating refresh tokens, and the keys that sign
-- access tokens.
--
-- Why:
-- * The server issues the tokens it verifies. What only the issuing side may touch (password hashes,
--   refresh tokens, private signing keys) lives in schema app, out of reach of fieldtrack_api: the server
--   reads and writes it as fieldtrack_issuer, through the functions below, in transactions of its own.
--   A request transaction (fieldtrack_api) can read none of it.
-- * A refresh token is 256 random bits, stored as its SHA-256 (a digest is enough for a secret nobody
--   can guess, and it allows an indexed lookup). Using one rotates it: its child is HMAC(key, token), so
--   two clients refreshing the same session at once (a browser tab and the dashboard's server) both get
--   the same child within a short grace period; presenting a rotated token after that revokes the whole
--   session (its family), as a stolen token would be presented.
-- * Every API request checks its caller in its own transaction (app.check_caller, in the statement that
--   sets the claims): a disabled user, a deactivated employee or a signed-out session is refused at once,
--   whatever tokens are still outstanding.
-- * Emails are unique whatever their case. (A database holding two users whose emails differ only in
--   case refuses this migration: merge them first.)
-- Locks: adds columns to users and swaps its email index (writes to users wait meanwhile); creates the
-- rest.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_issuer') THEN
        CREATE ROLE fieldtrack_issuer NOLOGIN NOBYPASSRLS;
    END IF;
    EXECUTE format('GRANT fieldtrack_issuer TO %I', current_user);
END
$$;
GRANT fieldtrack_issuer TO fieldtrack_authenticator;
GRANT USAGE ON SCHEMA app TO fieldtrack_issuer;

-- users ---------------------------------------------------------------------------------------------------

ALTER TABLE users ADD COLUMN disabled_at timestamptz, ADD COLUMN last_sign_in_at timestamptz;
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
ALTER TABLE users DROP CONSTRAINT users_email_key;

CREATE TABLE app.user_passwords (
    organization_id uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    -- PHC string: $argon2id$v=19$m=...,t=...,p=...$salt$hash
    password_hash   text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id),
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);

-- sessions and refresh tokens --------------------------------------------------------------------------

CREATE TABLE app.auth_sessions (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    refreshed_at    timestamptz,
    revoked_at      timestamptz,
    -- Why it was revoked: logout, reuse (a rotated refresh token came back), disabled.
    revoked_reason  text,
    user_agent      text,
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX auth_sessions_user ON app.auth_sessions (organization_id, user_id) WHERE revoked_at IS NULL;

CREATE TABLE app.refresh_tokens (
    token_hash  bytea       PRIMARY KEY,
    session_id  uuid        NOT NULL REFERENCES app.auth_sessions ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    -- Set when the token was exchanged for its child.
    rotated_at  timestamptz
);
CREATE INDEX refresh_tokens_session ON app.refresh_tokens (session_id);

-- The key that derives a refresh token's child; never leaves Postgres.
CREATE TABLE app.refresh_token_key (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key       bytea   NOT NULL DEFAULT gen_random_bytes(32)
);
INSERT INTO app.refresh_token_key DEFAULT VALUES;

-- A new opaque token: 43 characters of base64url.
CREATE FUNCTION app.new_token(p_bytes bytea) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT rtrim(translate(encode(p_bytes, 'base64'), '+/', '-_'), '=') $$;

-- app.auth_account_of: what a login or a refresh needs to know of a user (every field NULL when there
-- is no such user): the account, its password hash, whether it is disabled, its employee.
CREATE FUNCTION app.auth_account_of(p_org uuid, p_user uuid,
                                    OUT organization_id uuid, OUT user_id uuid, OUT email text, OUT role text,
                                    OUT password_hash text, OUT disabled boolean, OUT employee_id uuid,
                                    OUT employee_active boolean, OUT created_at timestamptz,
                                    OUT last_sign_in_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
        SELECT u.organization_id, u.id, u.email, u.role, p.password_hash, u.disabled_at IS NOT NULL,
               e.id, coalesce(e.is_active, false), u.created_at, u.last_sign_in_at
          FROM users u
          LEFT JOIN app.user_passwords p ON p.organization_id = u.organization_id AND p.user_id = u.id
          LEFT JOIN employees e ON e.organization_id = u.organization_id AND e.user_id = u.id
         WHERE u.organization_id = p_org AND u.id = p_user
    $$;

-- app.auth_account_by_email: the account of an email, any case.
CREATE FUNCTION app.auth_account_by_email(p_email text,
                                          OUT organization_id uuid, OUT user_id uuid, OUT email text,
                                          OUT role text, OUT password_hash text, OUT disabled boolean,
                                          OUT employee_id uuid, OUT employee_active boolean,
                                          OUT created_at timestamptz, OUT last_sign_in_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
        SELECT a.* FROM users u, app.auth_account_of(u.organization_id, u.id) a
         WHERE lower(u.email) = lower(p_email)
    $$;

-- Whether an account may hold a session: not disabled, and an employee's user only while the employee
-- is active.
CREATE FUNCTION app.auth_may_sign_in(p_disabled boolean, p_role text, p_employee_active boolean) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT NOT p_disabled AND (p_role = 'ADMIN' OR p_employee_active) $$;

-- app.auth_open_session starts a session for a user whose password the server checked, and returns it
-- with its first refresh token, valid p_ttl seconds.
CREATE FUNCTION app.auth_open_session(p_org uuid, p_user uuid, p_ttl bigint, p_user_agent text,
                                      OUT session_id uuid, OUT refresh_token text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    INSERT INTO app.auth_sessions (organization_id, user_id, user_agent)
    VALUES (p_org, p_user, left(p_user_agent, 300))
    RETURNING id INTO session_id;
    refresh_token := app.new_token(gen_random_bytes(32));
    INSERT INTO app.refresh_tokens (token_hash, session_id, expires_at)
    VALUES (digest(refresh_token, 'sha256'), session_id, now() + make_interval(secs => p_ttl));
    UPDATE users SET last_sign_in_at = now() WHERE organization_id = p_org AND id = p_user;
END
$$;

-- app.auth_refresh exchanges a refresh token for its child (valid p_ttl seconds). outcome: 'rotated'
-- (the child is new), 'replayed' (the token was rotated less than p_grace seconds ago: the same child
-- again), 'reused' (rotated longer ago: the session is revoked), 'refused' (the account may no longer
-- sign in: the session is revoked), 'ended' (unknown, expired, or its session revoked). The session and
-- the account come with 'rotated' and 'replayed'.
CREATE FUNCTION app.auth_refresh(p_token text, p_ttl bigint, p_grace bigint,
                                 OUT outcome text, OUT session_id uuid, OUT refresh_token text,
                                 OUT organization_id uuid, OUT user_id uuid, OUT email text, OUT role text,
                                 OUT employee_id uuid, OUT created_at timestamptz, OUT last_sign_in_at timestamptz)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
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
    SELECT * INTO s FROM app.auth_sessions x WHERE x.id = t.session_id FOR UPDATE;
    IF s.revoked_at IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT * INTO a FROM app.auth_account_of(s.organization_id, s.user_id);
    IF a.user_id IS NULL OR NOT app.auth_may_sign_in(a.disabled, a.role, a.employee_active) THEN
        UPDATE app.auth_sessions x SET revoked_at = now(), revoked_reason = 'refused' WHERE x.id = s.id;
        outcome := 'refused';
        RETURN;
    END IF;
    IF t.rotated_at IS NOT NULL AND t.rotated_at < now() - make_interval(secs => p_grace) THEN
        UPDATE app.auth_sessions x SET revoked_at = now(), revoked_reason = 'reuse' WHERE x.id = s.id;
        outcome := 'reused';
        RETURN;
    END IF;
    refresh_token := app.new_token(hmac(convert_to(p_token, 'UTF8'), (SELECT k.key FROM app.refresh_token_key k), 'sha256'));
    IF t.rotated_at IS NULL THEN
        UPDATE app.refresh_tokens r SET rotated_at = now() WHERE r.token_hash = t.token_hash;
        INSERT INTO app.refresh_tokens (token_hash, session_id, expires_at)
        VALUES (digest(refresh_token, 'sha256'), s.id, now() + make_interval(secs => p_ttl));
        UPDATE app.auth_sessions x SET refreshed_at = now() WHERE x.id = s.id;
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
$$;

-- app.auth_sign_out revokes the caller's session ('local'), all of its user's sessions ('global'), or
-- all but the caller's ('others').
CREATE FUNCTION app.auth_sign_out(p_org uuid, p_user uuid, p_session uuid, p_scope text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    n integer;
BEGIN
    UPDATE app.auth_sessions s SET revoked_at = now(), revoked_reason = 'logout'
     WHERE s.organization_id = p_org AND s.user_id = p_user AND s.revoked_at IS NULL
       AND CASE p_scope WHEN 'local' THEN s.id = p_session
                        WHEN 'others' THEN s.id IS DISTINCT FROM p_session
                        ELSE true END;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- app.check_caller refuses (PT401) a request of a disabled user, of a deactivated employee, or of a
-- session of ours that ended. Users and sessions another issuer knows (no row here) pass.
CREATE FUNCTION app.check_caller(p_org uuid, p_user uuid, p_employee uuid, p_session uuid) RETURNS boolean
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

-- Disabling a user ends its sessions.
CREATE FUNCTION app.users_disabled() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    UPDATE app.auth_sessions SET revoked_at = now(), revoked_reason = 'disabled'
     WHERE organization_id = NEW.organization_id AND user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_disabled AFTER UPDATE OF disabled_at ON users
    FOR EACH ROW WHEN (OLD.disabled_at IS NULL AND NEW.disabled_at IS NOT NULL)
    EXECUTE FUNCTION app.users_disabled();

-- signing keys ----------------------------------------------------------------------------------------------

-- ES256 keys that sign access tokens. The current one is the one not retired; a retired key still
-- verifies the tokens it signed until they expire (the server keeps it that long).
CREATE TABLE app.signing_keys (
    kid         text        PRIMARY KEY,
    algorithm   text        NOT NULL DEFAULT 'ES256' CHECK (algorithm = 'ES256'),
    -- PKCS #8 DER.
    private_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_current ON app.signing_keys ((true)) WHERE retired_at IS NULL;

-- retention ------------------------------------------------------------------------------------------------

-- app.prune_sessions deletes sessions ended more than a day ago and refresh tokens expired as long.
CREATE FUNCTION app.prune_sessions() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM app.refresh_tokens WHERE expires_at < now() - interval '1 day';
    DELETE FROM app.auth_sessions s WHERE s.revoked_at < now() - interval '1 day'
        OR NOT EXISTS (SELECT FROM app.refresh_tokens t WHERE t.session_id = s.id);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.schedule('fieldtrack-prune-sessions', '41 * * * *', 'SELECT app.prune_sessions()');
    END IF;
END
$$;

-- privileges ------------------------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION app.auth_account_of(uuid, uuid), app.auth_account_by_email(text),
    app.auth_open_session(uuid, uuid, bigint, text), app.auth_refresh(text, bigint, bigint),
    app.auth_sign_out(uuid, uuid, uuid, text), app.check_caller(uuid, uuid, uuid, uuid),
    app.prune_sessions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.auth_account_of(uuid, uuid), app.auth_account_by_email(text),
    app.auth_open_session(uuid, uuid, bigint, text), app.auth_refresh(text, bigint, bigint),
    app.auth_sign_out(uuid, uuid, uuid, text) TO fieldtrack_issuer;
GRANT EXECUTE ON FUNCTION app.check_caller(uuid, uuid, uuid, uuid) TO fieldtrack_api;
GRANT SELECT, INSERT, UPDATE (retired_at) ON app.signing_keys TO fieldtrack_issuer;
