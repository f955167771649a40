-- 000010 admin monitoring sessions: the periods an admin watches the live view (start/stop-monitoring).
--
-- Why: at most one open period per admin (a partial unique index), so starting twice answers the open
-- one; an admin sees its own periods.
-- Locks: creates objects only.

CREATE TABLE admin_sessions (
    organization_id uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    -- The admin's user id (the token's subject); not a reference to users, as admins of an external
    -- identity provider have no row there.
    admin_id        uuid        NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT admin_sessions_ended_after_start CHECK (ended_at IS NULL OR ended_at >= started_at)
);

CREATE UNIQUE INDEX admin_sessions_one_open ON admin_sessions (organization_id, admin_id) WHERE ended_at IS NULL;
CREATE INDEX admin_sessions_admin_started ON admin_sessions (organization_id, admin_id, started_at DESC);

GRANT SELECT, INSERT (organization_id, admin_id), UPDATE (ended_at) ON admin_sessions TO fieldtrack_api;

ALTER TABLE admin_sessions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY admin_sessions_own ON admin_sessions FOR ALL TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN'
        AND admin_id = (SELECT app.user_id()))
    WITH CHECK (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN'
        AND admin_id = (SELECT app.user_id()));
