-- Webhooks, their deliveries and the delivery worker.
--
-- Queries named Webhook*/Delivery* without "Worker:" in their comment run as the API role under the caller's
-- claims and name the caller's organization (@org_id); row-level security enforces it, and the API role
-- cannot read webhooks.secret at all. The worker's queries run as fieldtrack_worker, which sees every
-- organization: each names the organization of the rows it touches.
--
-- A webhook's public form is the column list below (never the secret), written in each statement that
-- returns it: the API role may not read the whole row.

-- name: WebhookList :many
-- The organization's webhooks, newest first, in their public form (never the secret).
SELECT id, organization_id, url, is_active, events, created_at, updated_at
FROM webhooks
WHERE organization_id = @org_id
ORDER BY created_at DESC, id;

-- name: WebhookExists :one
SELECT EXISTS (SELECT FROM webhooks WHERE organization_id = @org_id AND id = @id)::bool;

-- name: WebhookCreate :one
INSERT INTO webhooks (organization_id, url, secret, events)
VALUES (@org_id, @url, @secret, @events::text[])
RETURNING id, organization_id, url, is_active, events, created_at, updated_at;

-- name: WebhookLockState :one
-- The state an update needs to know the change it makes, locked until the transaction ends (NO KEY: the
-- listener may still record deliveries for the webhook meanwhile).
SELECT is_active, circuit_open_until
FROM webhooks
WHERE organization_id = @org_id AND id = @id
FOR NO KEY UPDATE;

-- name: WebhookUpdate :one
-- Changes the fields given (NULL keeps one). reset_circuit forgets past failures (re-activation, new URL);
-- re-activation also forgets why the webhook was disabled.
UPDATE webhooks
SET url                = coalesce(sqlc.narg(url)::text, url),
    events             = coalesce(sqlc.narg(events)::text[], events),
    is_active          = coalesce(sqlc.narg(is_active)::boolean, is_active),
    failure_streak     = CASE WHEN @reset_circuit::boolean THEN 0 ELSE failure_streak END,
    circuit_open_until = CASE WHEN @reset_circuit::boolean THEN NULL ELSE circuit_open_until END,
    disabled_reason    = CASE WHEN sqlc.narg(is_active)::boolean THEN NULL
                             WHEN NOT sqlc.narg(is_active)::boolean THEN 'disabled by an administrator'
                             ELSE disabled_reason END
WHERE organization_id = @org_id AND id = @id
RETURNING id, organization_id, url, is_active, events, created_at, updated_at;

-- name: WebhookSetSecret :execrows
-- A separate statement: the API role may write the secret but not read it, so it cannot appear in an
-- expression such as coalesce(new, secret).
UPDATE webhooks SET secret = @secret WHERE organization_id = @org_id AND id = @id;

-- name: WebhookDelete :execrows
-- Deliveries and their attempts go with the webhook (foreign-key cascade).
DELETE FROM webhooks WHERE organization_id = @org_id AND id = @id;

-- name: WebhookTestEvent :one
-- The synthetic webhook.test event for one webhook, written to the outbox like every other event.
SELECT app.emit_webhook_test(@org_id, @webhook_id)::uuid AS event_id;

-- name: DeliveryInsert :one
-- A pending delivery due now.
INSERT INTO webhook_deliveries (organization_id, webhook_id, event_id, event_type)
VALUES (@org_id, @webhook_id, @event_id, @event_type)
RETURNING id, event_id, status;

-- name: DeliveryList :many
-- The delivery log, newest first, optionally for one webhook and one status; response_code repeats
-- response_status (the original API's name).
SELECT d.*, d.response_status AS response_code, count(*) OVER ()::app.list_total AS total
FROM webhook_deliveries d
WHERE d.organization_id = @org_id
  AND (sqlc.narg(webhook_id)::uuid IS NULL OR d.webhook_id = sqlc.narg(webhook_id)::uuid)
  AND (sqlc.narg(status)::text IS NULL OR d.status = sqlc.narg(status)::text)
ORDER BY d.created_at DESC, d.id
LIMIT @row_limit OFFSET @row_offset;

-- name: DeliveryGetForUpdate :one
SELECT * FROM webhook_deliveries WHERE organization_id = @org_id AND id = @id FOR UPDATE;

-- name: DeliveryRetry :one
-- Queues a delivery for another attempt now; its attempt history stays. Answers it as the log lists it.
UPDATE webhook_deliveries
SET status = 'pending', next_retry_at = now()
WHERE organization_id = @org_id AND id = @id
RETURNING *, response_status AS response_code;

-- name: DeliveryDeadLetterList :many
-- Dead-lettered deliveries with their event's envelope, most recently failed first.
SELECT d.id, d.webhook_id, d.organization_id, d.event_id, d.event_type, e.payload, d.status,
       d.attempt_count AS attempts, d.response_status, d.response_body, d.last_error, d.next_retry_at,
       d.last_attempt_at, d.created_at, count(*) OVER ()::app.list_total AS total
FROM webhook_deliveries d
LEFT JOIN webhook_events e ON e.organization_id = d.organization_id AND e.id = d.event_id
WHERE d.organization_id = @org_id AND d.status = 'failed'
  AND (sqlc.narg(webhook_id)::uuid IS NULL OR d.webhook_id = sqlc.narg(webhook_id)::uuid)
  AND (sqlc.narg(event_type)::text IS NULL OR d.event_type = sqlc.narg(event_type)::text)
ORDER BY d.last_attempt_at DESC NULLS LAST, d.id
LIMIT @row_limit OFFSET @row_offset;

-- name: DeliveryWake :exec
-- Makes a webhook's pending deliveries that wait until at most wait_until due now (after re-activation or
-- when its circuit closes); the API role's and the worker's.
UPDATE webhook_deliveries
SET next_retry_at = now()
WHERE organization_id = @organization_id AND webhook_id = @webhook_id AND status = 'pending'
  AND next_retry_at > now() AND next_retry_at <= @wait_until;

-- name: WorkerPlanByIndex :exec
-- Worker: the first statement of each of its transactions, for the plans of the ones after it. They
-- join deliveries to arrays of ids and read the due index in its order. A generic plan cached on a
-- pooled connection outlives the table size it was made for: made while the table was small (a new
-- database, the first minute of a burst after autovacuum's first look) it reads every delivery, or every
-- event, for each row of a batch. So each statement is planned for the table as it is; and with sorts,
-- sequential, bitmap and hash scans off, what is left is the due index's order and a primary-key probe
-- per row, bounded by the batch even when the last ANALYZE saw few due deliveries and thousands are due
-- now. Planning costs about as much as running (1 ms a claim or record at 500 deliveries a second);
-- generic plans were tried (issue 14) and stalled the worker at 2,000 events a second: one made while
-- the deliveries were few reached each recorded delivery through webhook_deliveries_org_webhook by
-- organization only (as cheap as the key on a tiny table), 0.5 s a record. So every statement is
-- planned anew.
SELECT set_config('plan_cache_mode', 'force_custom_plan', true),
       set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
       set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
       set_config('enable_material', 'off', true), set_config('enable_sort', 'off', true);

-- name: DeliveryClaimDue :many
-- Worker: due pending deliveries (optionally of one organization), oldest due first, with their webhook's
-- state, claimed at once for one attempt each when their webhook is active with a closed circuit (or
-- they are webhook.test deliveries, which go whatever the state). The rows of both tables are locked,
-- skipping rows another worker holds, so that one worker at a time decides about a webhook (circuit
-- probes) and a delivery. A claim counts the attempt and moves next_retry_at a lease ahead, so no lock is
-- held while sending and a dead worker's claim expires by itself (at-least-once). Every due row comes
-- back: a claimed one (claimed true) with what sending needs and the trace context of the request that
-- emitted the event; the others for the caller to park or probe (DeliveryPark, DeliveryClaim).
WITH due AS (
    SELECT d.organization_id, d.id, d.webhook_id, d.event_id, d.event_type, w.is_active,
           (CASE WHEN w.circuit_open_until IS NULL THEN 'closed'
                 WHEN w.circuit_open_until > now() THEN 'open'
                 ELSE 'half_open' END)::text AS circuit
    FROM webhook_deliveries d
    JOIN webhooks w ON w.organization_id = d.organization_id AND w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_retry_at <= now()
      AND (sqlc.narg(organization_id)::uuid IS NULL OR d.organization_id = sqlc.narg(organization_id)::uuid)
    ORDER BY d.next_retry_at
    LIMIT @max_rows
    FOR NO KEY UPDATE OF d, w SKIP LOCKED
), claimed AS (
    UPDATE webhook_deliveries d
    SET attempt_count = d.attempt_count + 1,
        next_retry_at = now() + make_interval(secs => @lease_seconds::float8)
    FROM due
    WHERE d.organization_id = due.organization_id AND d.id = due.id
      AND (due.event_type = 'webhook.test' OR (due.is_active AND due.circuit = 'closed'))
    RETURNING d.organization_id, d.id, d.attempt_count
)
SELECT due.organization_id, due.id, due.webhook_id, due.event_id, due.event_type, due.is_active, due.circuit,
       (c.id IS NOT NULL)::boolean AS claimed,
       coalesce(c.attempt_count, 0)::int AS attempt_count, coalesce(w.url, '')::text AS url,
       coalesce(w.secret, '')::text AS secret, coalesce(e.payload, 'null')::jsonb AS payload,
       e.trace_context
FROM due
LEFT JOIN claimed c ON c.organization_id = due.organization_id AND c.id = due.id
LEFT JOIN webhooks w ON c.id IS NOT NULL AND w.organization_id = due.organization_id AND w.id = due.webhook_id
LEFT JOIN webhook_events e ON c.id IS NOT NULL AND e.organization_id = due.organization_id AND e.id = due.event_id;

-- name: WebhookMarkProbing :exec
-- Worker: a half-open webhook's probe is on its way; the circuit counts as open until it reports (or its
-- lease ends, should the worker die).
UPDATE webhooks w
SET circuit_open_until = now() + make_interval(secs => @lease_seconds::float8)
FROM (SELECT unnest(@organization_ids::uuid[]) AS org, unnest(@ids::uuid[]) AS id) AS p
WHERE w.organization_id = p.org AND w.id = p.id
  -- bounded by the listed webhooks whichever way the join is planned (on tables the statistics think
  -- tiny, the planner may start from the webhooks)
  AND w.organization_id = ANY (@organization_ids::uuid[]) AND w.id = ANY (@ids::uuid[]);

-- name: DeliveryPark :exec
-- Worker: due deliveries that cannot be sent now wait until they can: the end of their webhook's open
-- circuit, or an hour for an inactive webhook (re-activation wakes them earlier). Parked rows are not
-- scanned again by every poll.
UPDATE webhook_deliveries d
SET next_retry_at = CASE WHEN w.is_active THEN greatest(w.circuit_open_until, now())
                         ELSE now() + interval '1 hour' END
FROM (SELECT unnest(@organization_ids::uuid[]) AS org, unnest(@ids::uuid[]) AS id) AS p, webhooks w
WHERE d.organization_id = p.org AND d.id = p.id
  AND w.organization_id = d.organization_id AND w.id = d.webhook_id
  -- the webhooks read bounded by the listed organizations whichever way the join is planned (see
  -- WebhookMarkProbing)
  AND w.organization_id = ANY (@organization_ids::uuid[]);

-- name: DeliveryClaim :many
-- Worker: claims deliveries for one attempt each. The attempt is counted and next_retry_at moves a lease
-- ahead, so no lock is held while sending and a dead worker's claim expires by itself (at-least-once).
-- Returns what sending needs, with the trace context of the request that emitted the event. The update
-- reaches each delivery by its primary key; the webhook and the event are read for the claimed rows.
WITH claimed AS (
    UPDATE webhook_deliveries d
    SET attempt_count = d.attempt_count + 1,
        next_retry_at = now() + make_interval(secs => @lease_seconds::float8)
    FROM (SELECT unnest(@organization_ids::uuid[]) AS org, unnest(@ids::uuid[]) AS id) AS c
    WHERE d.organization_id = c.org AND d.id = c.id
    RETURNING d.organization_id, d.id, d.webhook_id, d.event_id, d.event_type, d.attempt_count
)
SELECT d.organization_id, d.id, d.webhook_id, d.event_id, d.event_type, d.attempt_count, w.url, w.secret,
       e.payload, e.trace_context
FROM claimed d
-- Each a probe by primary key from the claimed row, whichever way the planner would join them (on tables
-- the statistics think tiny, a join read the organization's every event for each claimed row). OFFSET 0
-- keeps each a subquery of its own.
CROSS JOIN LATERAL (SELECT x.url, x.secret FROM webhooks x
                     WHERE x.organization_id = d.organization_id AND x.id = d.webhook_id OFFSET 0) w
CROSS JOIN LATERAL (SELECT y.payload, y.trace_context FROM webhook_events y
                     WHERE y.organization_id = d.organization_id AND y.id = d.event_id OFFSET 0) e;

-- name: DeliveryRelease :exec
-- Worker: gives a claim back untried (shutdown interrupted the attempt): due now, attempt not counted.
UPDATE webhook_deliveries
SET attempt_count = attempt_count - 1, next_retry_at = now()
WHERE organization_id = @organization_id AND id = @id AND status = 'pending' AND attempt_count = @attempt;

-- name: DeliveryRecordBatch :many
-- Worker: the outcomes of many claimed attempts in one statement. First their webhooks that had only
-- successes among them (healthy_*, in key order): WebhookRecordSuccess for each, in one (a webhook that
-- was healthy already is not even locked). Then each attempt's row of the delivery log (nothing when the
-- delivery was deleted meanwhile) and the delivery's new state, only while that claim is current: a
-- claim that outlived its lease and was taken over, or a delivery an admin changed meanwhile, is left
-- alone. Arrays of equal length, one element per attempt; a response status or duration of 0 and an
-- empty error are stored as NULL, and the answer's body only with a response status. Returns the
-- webhooks whose circuit this closed, with until when their deliveries were parked (see DeliveryWake).
-- The webhooks come first because the statement reads them (the other parts run after it): an admin's
-- update locks a webhook before its deliveries too.
WITH o AS (
    SELECT unnest(@organization_ids::uuid[]) AS organization_id, unnest(@ids::uuid[]) AS id,
           unnest(@attempts::int[]) AS attempt, unnest(@statuses::text[]) AS status,
           unnest(@response_statuses::int[]) AS response_status, unnest(@response_bodies::text[]) AS response_body,
           unnest(@errors::text[]) AS error, unnest(@durations_ms::int[]) AS duration_ms,
           unnest(@retry_in_seconds::float8[]) AS retry_in_seconds
), healed AS (
    -- Both sides bounded by the listed webhooks (a probe each): left to the join, a plan could read every
    -- webhook, once per webhook.
    UPDATE webhooks w
    SET failure_streak = 0, circuit_open_until = NULL
    FROM (SELECT x.organization_id, x.id, x.circuit_open_until
          FROM (SELECT unnest(@healthy_organization_ids::uuid[]) AS org, unnest(@healthy_ids::uuid[]) AS id) s
          CROSS JOIN LATERAL (SELECT y.organization_id, y.id, y.circuit_open_until
                                FROM webhooks y
                               WHERE y.organization_id = s.org AND y.id = s.id
                                 AND (y.failure_streak <> 0 OR y.circuit_open_until IS NOT NULL)
                                 FOR NO KEY UPDATE) x) old
    WHERE w.organization_id = old.organization_id AND w.id = old.id
      AND w.organization_id = ANY (@healthy_organization_ids::uuid[]) AND w.id = ANY (@healthy_ids::uuid[])
    RETURNING w.organization_id, w.id, old.circuit_open_until
), logged AS (
    INSERT INTO webhook_delivery_attempts (organization_id, delivery_id, attempt, response_status, error, duration_ms)
    SELECT d.organization_id, d.id, o.attempt, nullif(o.response_status, 0), nullif(o.error, ''), nullif(o.duration_ms, 0)
    FROM o JOIN webhook_deliveries d ON d.organization_id = o.organization_id AND d.id = o.id
    ON CONFLICT DO NOTHING
), recorded AS (
    UPDATE webhook_deliveries d
    SET status          = o.status,
        response_status = nullif(o.response_status, 0),
        response_body   = CASE WHEN o.response_status <> 0 THEN o.response_body END,
        last_error      = nullif(o.error, ''),
        last_attempt_at = now(),
        next_retry_at   = CASE WHEN o.status = 'pending' THEN now() + make_interval(secs => o.retry_in_seconds) END
    FROM o
    -- Pending, written so that it is not the due index's predicate: the plan probes each delivery by its
    -- key instead of reading every pending one (the statistics may say there are few).
    WHERE d.organization_id = o.organization_id AND d.id = o.id AND d.status NOT IN ('success', 'failed')
      AND d.attempt_count = o.attempt
)
SELECT healed.organization_id, healed.id, healed.circuit_open_until FROM healed;

-- name: WebhookRecordSuccess :one
-- Worker: a success closes the circuit of a webhook that was failing and returns until when its
-- deliveries were parked. No row for a webhook that was healthy already: the common case writes nothing.
UPDATE webhooks w
SET failure_streak = 0, circuit_open_until = NULL
FROM (SELECT x.organization_id, x.id, x.circuit_open_until
      FROM webhooks x
      WHERE x.organization_id = @organization_id AND x.id = @id
        AND (x.failure_streak <> 0 OR x.circuit_open_until IS NOT NULL)
      FOR NO KEY UPDATE) old
WHERE w.organization_id = old.organization_id AND w.id = old.id
  AND w.organization_id = @organization_id AND w.id = @id -- a probe, whichever way the join is planned
RETURNING old.circuit_open_until;

-- name: WebhookRecordFailure :one
-- Worker: counts a failed attempt against the circuit breaker. Failures while the circuit is open (attempts
-- that were already in flight) do not count; the threshold-th consecutive failure opens the circuit for
-- open_seconds; a failed probe re-opens it for twice as long as the time before, up to max_open_seconds.
UPDATE webhooks w
SET failure_streak     = CASE WHEN w.circuit_open_until IS NULL OR p.probe
                              THEN w.failure_streak + 1 ELSE w.failure_streak END,
    circuit_open_until = CASE
        WHEN p.probe
            THEN now() + least(p.open_seconds * power(2, least(greatest(w.failure_streak + 1 - p.threshold, 0), 30)),
                               p.max_open_seconds) * interval '1 second'
        WHEN w.circuit_open_until IS NULL AND w.failure_streak + 1 >= p.threshold
            THEN now() + p.open_seconds * interval '1 second'
        ELSE w.circuit_open_until END
FROM (SELECT @probe::boolean AS probe, @threshold::int AS threshold, @open_seconds::float8 AS open_seconds,
             @max_open_seconds::float8 AS max_open_seconds) p
WHERE w.organization_id = @organization_id AND w.id = @id
RETURNING w.failure_streak, w.circuit_open_until;

-- name: WebhookDisable :exec
-- Worker: the endpoint said it is gone (410); pending deliveries stay and resume if it is re-activated.
UPDATE webhooks
SET is_active = false, disabled_reason = @reason
WHERE organization_id = @organization_id AND id = @id;
