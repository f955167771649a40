-- 000023 the webhook worker's writes skip the audit triggers without calling them.
--
-- Why: every delivery is updated twice by the worker (its claim and its outcome), and every failed attempt
-- updates its webhook. 000016's audit triggers on those tables run app.audit_trigger() for each row, which
-- builds to_jsonb(OLD) and to_jsonb(NEW) and only then finds that the caller is no admin (the worker never
-- is) and records nothing. At 2,000 deliveries a second that was a fifth of the worker's Postgres time
-- (27 µs a call, two calls a delivery). The same test in the trigger's WHEN clause costs a setting lookup
-- per row and queues no after-trigger event. What is audited is unchanged: admins' retries of
-- deliveries and admins' changes of webhooks, exactly as before.
-- Locks: DROP/CREATE TRIGGER take SHARE ROW EXCLUSIVE on webhook_deliveries and on webhooks for an instant
-- (writers wait, readers do not); no data is touched.

DROP TRIGGER webhook_deliveries_audit_retried ON webhook_deliveries;
CREATE TRIGGER webhook_deliveries_audit_retried AFTER UPDATE OF status, next_retry_at ON webhook_deliveries
    FOR EACH ROW WHEN (app.role() = 'ADMIN')
    EXECUTE FUNCTION app.audit_trigger('webhook_delivery.retried', 'webhook_delivery');

DROP TRIGGER webhooks_audit_updated ON webhooks;
CREATE TRIGGER webhooks_audit_updated AFTER UPDATE ON webhooks
    FOR EACH ROW WHEN (app.role() = 'ADMIN')
    EXECUTE FUNCTION app.audit_trigger('webhook.updated', 'webhook');
