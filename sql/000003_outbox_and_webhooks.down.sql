-- 000003 the outbox and webhooks, reversed. The listener's replication slot is dropped when nothing is
-- streaming from it.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.unschedule(jobid) FROM cron.job
         WHERE jobname IN ('fieldtrack-prune-events', 'fieldtrack-prune-cron-log');
    END IF;
    PERFORM pg_drop_replication_slot(slot_name) FROM pg_replication_slots
     WHERE slot_name = app.outbox_slot() AND NOT active;
END
$$;
DROP PUBLICATION IF EXISTS fieldtrack_events;
DROP FUNCTION IF EXISTS app.prune_events();
DROP FUNCTION IF EXISTS app.slot_lag_bytes();
DROP FUNCTION IF EXISTS app.slot_active();
DROP FUNCTION IF EXISTS app.slot_wal_status();
DROP FUNCTION IF EXISTS app.slot_confirmed_lsn();
DROP FUNCTION IF EXISTS app.create_outbox_slot();
DROP FUNCTION IF EXISTS app.outbox_slot();
DROP FUNCTION IF EXISTS app.dispatch_events(uuid[], uuid[], bigint[]);
DROP FUNCTION IF EXISTS app.listen_stream();
DROP FUNCTION IF EXISTS app.stream_channel();
DROP FUNCTION IF EXISTS app.emit_webhook_test(uuid, uuid);
DROP FUNCTION IF EXISTS app.emit(uuid, text, jsonb, text, jsonb);
DROP FUNCTION IF EXISTS app.append_event(uuid, text, jsonb, text, jsonb);
DROP TABLE IF EXISTS webhook_delivery_attempts, webhook_deliveries, webhook_events, webhooks;
DROP FUNCTION IF EXISTS app.webhook_events_hold_xact();
DROP FUNCTION IF EXISTS app.outbox_lock_key(bigint);
DROP TABLE IF EXISTS app.stream_state;
DROP SEQUENCE IF EXISTS app.stream_seq;
