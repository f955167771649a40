-- 000012 built-in identity, reversed: accounts keep their users rows, lose passwords and sessions.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.unschedule(jobid) FROM cron.job WHERE jobname = 'fieldtrack-prune-sessions';
    END IF;
END
$$;
DROP FUNCTION IF EXISTS app.prune_sessions();
DROP TABLE IF EXISTS app.signing_keys;
DROP TRIGGER IF EXISTS users_disabled ON users;
DROP FUNCTION IF EXISTS app.users_disabled();
DROP FUNCTION IF EXISTS app.check_caller(uuid, uuid, uuid, uuid);
DROP FUNCTION IF EXISTS app.auth_sign_out(uuid, uuid, uuid, text);
DROP FUNCTION IF EXISTS app.auth_refresh(text, bigint, bigint);
DROP FUNCTION IF EXISTS app.auth_open_session(uuid, uuid, bigint, text);
DROP FUNCTION IF EXISTS app.auth_may_sign_in(boolean, text, boolean);
DROP FUNCTION IF EXISTS app.auth_account_by_email(text);
DROP FUNCTION IF EXISTS app.auth_account_of(uuid, uuid);
DROP FUNCTION IF EXISTS app.new_token(bytea);
DROP TABLE IF EXISTS app.refresh_token_key;
DROP TABLE IF EXISTS app.refresh_tokens;
DROP TABLE IF EXISTS app.auth_sessions;
DROP TABLE IF EXISTS app.user_passwords;
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
DROP INDEX IF EXISTS users_email_lower_key;
ALTER TABLE users DROP COLUMN IF EXISTS last_sign_in_at, DROP COLUMN IF EXISTS disabled_at;
REVOKE USAGE ON SCHEMA app FROM fieldtrack_issuer;
