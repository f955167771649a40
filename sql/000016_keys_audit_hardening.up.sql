-- 000016 API keys, the audit log and what a security review found.
--
-- Why:
-- * The event listener logs in as its own role, fieldtrack_listener: it needs REPLICATION, and a login with
--   REPLICATION could read every tenant's changes through a slot, so that login must not also be able to
--   switch to fieldtrack_api. It may switch to fieldtrack_worker, the role of the listener's hand-off.
--   No password until an operator sets one (like fieldtrack_authenticator).
-- * SSE ids are opaque: a stream position encrypted with app.stream_keys' key (shared by every server
--   process), so an admin cannot count other tenants' events from the ids it sees.
-- Locks: creates objects; re-owns functions (no table rewrite).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_listener') THEN
        CREATE ROLE fieldtrack_listener LOGIN NOINHERIT NOBYPASSRLS REPLICATION;
    END IF;
END
$$;
GRANT fieldtrack_worker TO fieldtrack_listener;

CREATE TABLE app.stream_keys (
    id         smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    key        bytea NOT NULL DEFAULT gen_random_bytes(32) CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO app.stream_keys DEFAULT VALUES;
GRANT SELECT ON app.stream_keys TO fieldtrack_worker;
