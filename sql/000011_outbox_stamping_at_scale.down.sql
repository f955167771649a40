DROP INDEX IF EXISTS webhook_events_unstamped;
CREATE UNIQUE INDEX webhook_events_stream_all ON webhook_events (stream_id);
DROP INDEX webhook_events_stream_id;
ALTER INDEX webhook_events_stream_all RENAME TO webhook_events_stream_id;
