-- 000002 organizations: the tenants. Every other tenant table references one and carries its id.
--
-- Why: organization_id is the tenant key of every row (and the distribution column on Citus), so the
-- organization is the root every composite key starts from.
-- Locks: creates objects only.

CREATE TABLE organizations (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    slug       text        UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

GRANT SELECT ON organizations TO fieldtrack_api;

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY organizations_select ON organizations FOR SELECT TO fieldtrack_api
    USING (id = (SELECT app.org_id()));
