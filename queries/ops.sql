-- The operations endpoints' figures of one organization.

-- name: OpsDistanceCounts :one
-- The organization's distance computations by state (closed sessions only; open ones are not due yet).
SELECT count(*) FILTER (WHERE distance_recalculation_status = 'pending')::bigint AS waiting,
       count(*) FILTER (WHERE distance_recalculation_status = 'processing')::bigint AS active,
       count(*) FILTER (WHERE distance_recalculation_status = 'done')::bigint AS completed,
       count(*) FILTER (WHERE distance_recalculation_status = 'failed')::bigint AS failed
FROM attendance_sessions
WHERE organization_id = @org_id AND checkout_at IS NOT NULL;

-- name: OpsWebhookCounts :one
-- The organization's webhook deliveries by state. Pending ones are waiting (due now: never tried, retry
-- due, or a claim whose lease ran out), active (claimed by a worker: its attempt is counted but not yet
-- recorded) or delayed (a retry scheduled later, or parked behind an open circuit or an inactive webhook).
SELECT count(*) FILTER (WHERE d.status = 'pending' AND d.next_retry_at <= now())::bigint AS waiting,
       count(*) FILTER (WHERE d.status = 'pending' AND d.next_retry_at > now() AND d.claimed)::bigint AS active,
       count(*) FILTER (WHERE d.status = 'pending' AND d.next_retry_at > now() AND NOT d.claimed)::bigint AS delayed,
       count(*) FILTER (WHERE d.status = 'success')::bigint AS completed,
       count(*) FILTER (WHERE d.status = 'failed')::bigint AS failed
FROM (
    SELECT w.status, w.next_retry_at,
           CASE WHEN w.status = 'pending' THEN w.attempt_count > coalesce((
               SELECT max(a.attempt) FROM webhook_delivery_attempts a
               WHERE a.organization_id = w.organization_id AND a.delivery_id = w.id), 0) END AS claimed
    FROM webhook_deliveries w
    WHERE w.organization_id = @org_id
) d;

-- name: OpsWebhookRecentStats :one
-- Success figures over the organization's latest 500 deliveries.
SELECT count(*)::bigint AS total,
       count(*) FILTER (WHERE status = 'success')::bigint AS succeeded,
       count(*) FILTER (WHERE status = 'failed')::bigint AS failed,
       count(*) FILTER (WHERE attempt_count > 1)::bigint AS retried
FROM (SELECT status, attempt_count FROM webhook_deliveries WHERE organization_id = @org_id
      ORDER BY created_at DESC LIMIT 500) recent;

-- name: RetryIntentList :many
-- Failed or retrying asynchronous work of the organization, newest first: webhook deliveries waiting for a
-- retry (pending) or dead-lettered (dead), and distance computations that failed (failed).
SELECT id, queue_name, job_key, payload, status, retry_count, error_message, next_retry_at, created_at, updated_at,
       count(*) OVER ()::app.list_total AS total
FROM (
    SELECT d.id, 'webhook-delivery'::text AS queue_name, d.id::text AS job_key,
           jsonb_build_object('webhook_id', d.webhook_id, 'event_id', d.event_id, 'event_type', d.event_type) AS payload,
           CASE WHEN d.status = 'failed' THEN 'dead' ELSE 'pending' END::text AS status,
           d.attempt_count AS retry_count, d.last_error AS error_message, d.next_retry_at, d.created_at, d.updated_at
    FROM webhook_deliveries d
    WHERE d.organization_id = @org_id
      AND (d.status = 'failed' OR (d.status = 'pending' AND d.attempt_count > 0 AND d.response_status IS DISTINCT FROM 200))
    UNION ALL
    SELECT s.id, 'distance-engine'::text, s.id::text,
           jsonb_build_object('sessionId', s.id, 'employeeId', s.employee_id),
           'failed'::text, 0, ss.last_error, NULL::timestamptz, s.created_at, s.updated_at
    FROM attendance_sessions s
    LEFT JOIN session_summaries ss ON ss.organization_id = s.organization_id AND ss.session_id = s.id
    WHERE s.organization_id = @org_id AND s.distance_recalculation_status = 'failed'
) intents
WHERE @status::text = 'all' OR intents.status = @status::text
ORDER BY updated_at DESC, id
LIMIT @row_limit OFFSET @row_offset;
