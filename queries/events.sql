-- name: EventDispatch :one
-- The listener's hand-off of one committed transaction's events (worker role).
SELECT app.dispatch_events(@organization_ids::uuid[], @event_ids::uuid[])::bigint AS last_stream_id;

-- name: EventStreamHead :one
-- The highest stream position handed off so far.
SELECT coalesce(max(stream_id), 0)::bigint AS head FROM webhook_events;

-- name: EventStreamAfter :many
-- Streamed events after a position, across organizations, in commit order (worker role; the fan-out).
SELECT stream_id::bigint AS stream_id, organization_id, stream_event::text AS stream_event,
       stream_payload, created_at
FROM webhook_events
WHERE stream_id > @after::bigint AND stream_event IS NOT NULL
ORDER BY stream_id
LIMIT @max_events;

-- name: EventReplay :many
-- The caller's organization's streamed events in (after, upto], in commit order (SSE replay).
SELECT stream_id::bigint AS stream_id, organization_id, stream_event::text AS stream_event,
       stream_payload, created_at
FROM webhook_events
WHERE stream_id > @after::bigint AND stream_id <= @upto::bigint AND stream_event IS NOT NULL
ORDER BY stream_id
LIMIT @max_events;

-- name: StreamPrunedThrough :one
-- Events at or below this position may have been deleted by retention.
SELECT pruned_through FROM app.stream_state;

-- name: OutboxBacklog :one
-- Events committed but not yet handed off by the listener (the caller's organization under the API role,
-- every organization under the worker role).
SELECT app.outbox_backlog()::bigint AS backlog;

-- name: ReplicationSlotStatus :one
-- How many bytes of WAL the listener's slot holds back (-1 before the slot exists), and whether a listener
-- is streaming from it.
SELECT app.outbox_slot()::text AS slot_name,
       coalesce(app.slot_lag_bytes(), -1)::bigint AS lag_bytes,
       app.slot_active()::bool AS active;

-- name: EventDispatchUnstamped :one
-- Hands off every event that has no stream position yet, oldest first: events written before the slot
-- existed, or lost with an invalidated slot, are not in any WAL the listener will read. Idempotent with the
-- listener's own hand-off (worker role).
SELECT app.dispatch_events(coalesce(array_agg(organization_id ORDER BY created_at, id), '{}'),
                           coalesce(array_agg(id ORDER BY created_at, id), '{}'))::bigint AS last_stream_id
FROM webhook_events
WHERE stream_id IS NULL;
