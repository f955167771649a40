-- 000023 reversed: the audit triggers of webhook deliveries and webhooks as 000016 made them (the function
-- decides alone).
DROP TRIGGER webhooks_audit_updated ON webhooks;
CREATE TRIGGER webhooks_audit_updated AFTER UPDATE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('webhook.updated', 'webhook');

DROP TRIGGER webhook_deliveries_audit_retried ON webhook_deliveries;
CREATE TRIGGER webhook_deliveries_audit_retried AFTER UPDATE OF status, next_retry_at ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION app.audit_trigger('webhook_delivery.retried', 'webhook_delivery');
