-- 000026 reversed: the outbox's foreign key to organizations again (events left by an organization
-- deleted meanwhile are deleted first, as the key would have).
-- Locks: ADD CONSTRAINT scans the outbox under SHARE ROW EXCLUSIVE on webhook_events and organizations:
-- events cannot be written meanwhile (seconds for millions of events).
DROP TRIGGER organizations_delete_events ON organizations;
DROP FUNCTION app.organizations_delete_events();
DELETE FROM webhook_events e WHERE NOT EXISTS (SELECT FROM organizations o WHERE o.id = e.organization_id);
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_organization_id_fkey
    FOREIGN KEY (organization_id) REFERENCES organizations ON DELETE CASCADE;
