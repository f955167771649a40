-- 000026 an event no longer locks its organization's row.
--
-- Why: the outbox's foreign key to organizations made every event's INSERT take a FOR KEY SHARE lock on
-- its organization's row. All the events of an organization lock the same row, so concurrent writers
-- (its phones checking in, its admins reviewing) each join a multixact on it, which Postgres writes to
-- the WAL and to the row's page: at 2,000 events a second for one organization, pg_stat_statements
-- counted 120 µs per event in that check alone, a quarter of the outbox insert. The key protected that
-- an organization's events go with it; a trigger on organizations does that now, for DELETE (a TRUNCATE
-- of organizations, which nothing of ours does, would leave its events behind until their retention).
-- Events are written by app.append_event in the transaction of a change to a row of their
-- organization; without the key, nothing but that keeps an event from naming an organization deleted
-- meanwhile (a transaction that began before the delete and commits after it): such an event reaches
-- no webhook or stream (those went with the organization) and is pruned with the others.
-- Locks: DROP CONSTRAINT takes ACCESS EXCLUSIVE on webhook_events and on organizations (its triggers)
-- for an instant, no scan; CREATE TRIGGER takes SHARE ROW EXCLUSIVE on organizations.

ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_organization_id_fkey;

-- As ON DELETE CASCADE did: the events (and through their own keys, their deliveries) go with the
-- organization, in the same statement.
CREATE FUNCTION app.organizations_delete_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
BEGIN
    DELETE FROM public.webhook_events e USING old_organizations o WHERE e.organization_id = o.id;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION app.organizations_delete_events() FROM PUBLIC;
-- Owned by fieldtrack_owner as every definer function (000016).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_owner') THEN
        ALTER FUNCTION app.organizations_delete_events() OWNER TO fieldtrack_owner;
    END IF;
END
$$;
CREATE TRIGGER organizations_delete_events AFTER DELETE ON organizations
    REFERENCING OLD TABLE AS old_organizations
    FOR EACH STATEMENT EXECUTE FUNCTION app.organizations_delete_events();
