-- The outbox's hand-off and its stream. The listener's and the fan-out's queries run as the worker role and
-- span every organization by design (the stream is one, in commit order); the others run as the API role
-- under the caller's claims.

-- name: EventDispatch :one
-- The listener's hand-off of committed transactions' events, with each event's transaction id (worker).
SELECT app.dispatch_events(@organization_ids::uuid[], @event_ids::uuid[], sqlc.narg(xids)::bigint[])::bigint
    AS last_stream_id;

-- name: EventHandOff :many
-- The listener's hand-off of committed transactions' events, with each event's transaction id (worker):
-- the events it stamped, in stream order (stream_event '' when not streamed), and the stream head they
-- follow (sql/000024); then, with claims > 0, up to that many deliveries made claimed for their first
-- attempt for a lease of lease_seconds, each with what sending it needs (stream_id 0, claim_id set,
-- claim_trace_context '' for none; sql/000027), and a row of zeros when it left deliveries of these
-- events for the workers to claim (after the claims). An event row has claim_id zero.
SELECT coalesce(h.stream_id, 0)::bigint AS stream_id,
       coalesce(h.organization_id, '00000000-0000-0000-0000-000000000000')::uuid AS organization_id,
       coalesce(h.stream_event, '')::text AS stream_event, h.stream_payload::jsonb AS stream_payload,
       coalesce(h.created_at, 'epoch')::timestamptz AS created_at, coalesce(h.prev_head, 0)::bigint AS prev_head,
       coalesce(h.claim_id, '00000000-0000-0000-0000-000000000000')::uuid AS claim_id,
       coalesce(h.claim_webhook_id, '00000000-0000-0000-0000-000000000000')::uuid AS claim_webhook_id,
       coalesce(h.claim_event_id, '00000000-0000-0000-0000-000000000000')::uuid AS claim_event_id,
       coalesce(h.claim_event_type, '')::text AS claim_event_type, coalesce(h.claim_url, '')::text AS claim_url,
       coalesce(h.claim_secret, '')::text AS claim_secret, h.claim_payload::jsonb AS claim_payload,
       coalesce(h.claim_trace_context, '')::text AS claim_trace_context
FROM app.hand_off(@organization_ids::uuid[], @event_ids::uuid[], sqlc.narg(xids)::bigint[], @claims::int,
                  @lease_seconds::float8) AS h
ORDER BY h.stream_id NULLS LAST, h.claim_id IS NULL;

-- name: EventDispatchUnstamped :one
-- Hands off every event that has no stream position yet, oldest first: events written before the slot
-- existed, or lost with an invalidated slot, are not in any WAL the listener will read. Idempotent with the
-- listener's own hand-off (worker).
SELECT app.dispatch_events(coalesce(array_agg(organization_id ORDER BY created_at, id), '{}'),
                           coalesce(array_agg(id ORDER BY created_at, id), '{}'), NULL)::bigint AS last_stream_id
FROM webhook_events
-- unstamped; see 000011 for why not stream_id
WHERE dispatched_at IS NULL;

-- name: EventStreamHead :one
-- The highest stream position handed off so far (worker).
SELECT coalesce(max(stream_id), 0)::bigint AS head FROM webhook_events;

-- name: EventStreamAfter :many
-- Streamed events after a position, across organizations, in commit order (worker; the fan-out).
SELECT stream_id::bigint AS stream_id, organization_id, stream_event::text AS stream_event,
       stream_payload, created_at
FROM webhook_events
WHERE stream_id > @after::bigint AND stream_event IS NOT NULL
ORDER BY stream_id
LIMIT @max_events;

-- name: EventReplay :many
-- The organization's streamed events in (after, upto], in commit order (SSE replay).
SELECT stream_id::bigint AS stream_id, organization_id, stream_event::text AS stream_event,
       stream_payload, created_at
FROM webhook_events
WHERE organization_id = @org_id AND stream_id > @after::bigint AND stream_id <= @upto::bigint
  AND stream_event IS NOT NULL
ORDER BY stream_id
LIMIT @max_events;

-- name: StreamKey :one
-- The AES key that makes SSE ids opaque, the same for every server process (worker).
SELECT key FROM app.stream_keys WHERE id = 1;

-- name: StreamPrunedThrough :one
-- Events at or below this position may have been deleted by retention.
SELECT pruned_through FROM app.stream_state;

-- name: StreamListen :exec
-- Subscribes this connection to the notifications of hand-offs (app.stream_channel()).
SELECT app.listen_stream();

-- name: OutboxBacklog :one
-- Events committed but not yet handed off by the listener: of one organization, or of all (NULL, worker).
SELECT count(*)::bigint AS backlog
FROM webhook_events
-- unstamped; see 000011 for why not stream_id
WHERE dispatched_at IS NULL
  AND (sqlc.narg(org_id)::uuid IS NULL OR organization_id = sqlc.narg(org_id)::uuid);

-- name: OutboxHandedOff :one
-- The organization's events the listener has handed off (within the retention).
SELECT count(*)::bigint AS handed_off
FROM webhook_events
WHERE organization_id = @org_id AND stream_id IS NOT NULL;

-- name: ReplicationSlotStatus :one
-- How many bytes of WAL the listener's slot holds back (-1 before the slot exists), and whether a listener
-- is streaming from it.
SELECT app.outbox_slot()::text AS slot_name,
       coalesce(app.slot_lag_bytes(), -1)::bigint AS lag_bytes,
       app.slot_active()::bool AS active;

-- The listener's own connection (the server's login role, outside any request transaction).

-- name: ListenerTryLead :one
-- Takes the leader lock when no other process holds it; it lasts as long as this connection.
SELECT pg_try_advisory_lock(@lock_key::bigint)::bool AS leading;

-- name: SlotState :one
-- The outbox slot's name, WAL status and confirmed position (both empty while it does not exist).
SELECT app.outbox_slot()::text AS slot_name, coalesce(app.slot_wal_status(), '')::text AS wal_status,
       coalesce(app.slot_confirmed_lsn(), '')::text AS confirmed_lsn;

-- name: ConnectionAsWorker :exec
-- Makes a connection of its own (the notifier's, the leader lock's: never a pooled one) act as the worker
-- role for the rest of its life, so the server's login role itself needs nothing but to switch.
SELECT set_config('role', 'fieldtrack_worker', false);

-- name: LoginAttributes :one
-- What the connection's login (session_user, whichever role it switched to since) may do beyond its own
-- grants: superuser, REPLICATION, whether it may switch to fieldtrack_api (a superuser may switch to
-- any role), and whether it may grant itself roles or read past row-level security (CREATEROLE,
-- BYPASSRLS). serve checks the listener's login and the pool's with it.
SELECT session_user::text AS login, r.rolsuper::bool AS superuser, r.rolreplication::bool AS replication,
       pg_has_role(session_user, 'fieldtrack_api', 'MEMBER')::bool AS may_be_api,
       (r.rolcreaterole OR r.rolbypassrls)::bool AS may_escalate
FROM pg_catalog.pg_roles r
WHERE r.rolname = session_user;

-- name: DeadLetterCount :one
-- Dead-lettered deliveries of every organization (the worker sees them all), for operators.
SELECT count(*)::bigint AS dead_letters FROM webhook_deliveries WHERE status = 'failed';

-- name: OutboxLastHandedOff :one
-- When the listener last handed off one of the organization's events (no row: none within the retention).
SELECT e.dispatched_at FROM webhook_events e
WHERE e.organization_id = @org_id AND e.stream_id IS NOT NULL
ORDER BY e.stream_id DESC LIMIT 1;
