-- 000026 an event no longer locks its organization's row.
--
-- Why: the outbox's foreign key to organizations made every event's INSERT take a FOR KEY SHARE lock on
-- its organization's row. All the events of an organization lock the same row, so concurrent writers
-- (its phones checking in, its admins reviewing) each join a multixact on it, which Postgres writes to
-- the WAL and to the row's page: at 2,000 events a second for one organization, pg_stat_statements
-- counted 120 µs per event in that check alone, a quarter of the outbox insert. The key protected one
-- thing, that an organization's events go with it; a trigger on organizations does that now. An event
-- is only ever written by app.append_event, in the transaction of a change to a row of its organization,
-- which holds (or has just made) that organization's rows, so no event can name an organization that
-- does not exist.
-- Locks: DROP CONSTRAINT takes ACCESS EXCLUSIVE on webhook_events and SHARE ROW EXCLUSIVE on
-- organizations for an instant (no scan); CREATE TRIGGER takes SHARE ROW EXCLUSIVE on organizations.

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
CREATE TRIGGER organizations_delete_events AFTER DELETE ON organizations
    REFERENCING OLD TABLE AS old_organizations
    FOR EACH STATEMENT EXECUTE FUNCTION app.organizations_delete_events();
