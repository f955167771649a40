-- name: OpsDistanceCounts :one
-- The organization's distance computations by state (closed sessions only; open ones are not due yet).
SELECT count(*) FILTER (WHERE distance_recalculation_status = 'pending')::bigint AS waiting,
       count(*) FILTER (WHERE distance_recalculation_status = 'processing')::bigint AS active,
       count(*) FILTER (WHERE distance_recalculation_status = 'done')::bigint AS completed,
       count(*) FILTER (WHERE distance_recalculation_status = 'failed')::bigint AS failed
FROM attendance_sessions
WHERE checkout_at IS NOT NULL;

-- name: OpsWebhookCounts :one
-- The organization's webhook deliveries by state: waiting (due or scheduled), active (claimed by a
-- worker right now, i.e. attempted and leased), completed, dead-lettered.
SELECT count(*) FILTER (WHERE status = 'pending' AND (last_attempt_at IS NULL OR next_retry_at <= now()
                              OR last_attempt_at < now() - interval '1 minute'))::bigint AS waiting,
       count(*) FILTER (WHERE status = 'pending' AND last_attempt_at >= now() - interval '1 minute'
                              AND next_retry_at > now())::bigint AS active,
       count(*) FILTER (WHERE status = 'success')::bigint AS completed,
       count(*) FILTER (WHERE status = 'failed')::bigint AS failed
FROM webhook_deliveries;

-- name: OpsWebhookRecentStats :one
-- Success figures over the organization's latest 500 deliveries that finished or were retried.
SELECT count(*)::bigint AS total,
       count(*) FILTER (WHERE status = 'success')::bigint AS succeeded,
       count(*) FILTER (WHERE status = 'failed')::bigint AS failed,
       count(*) FILTER (WHERE attempt_count > 1)::bigint AS retried
FROM (SELECT status, attempt_count FROM webhook_deliveries ORDER BY created_at DESC LIMIT 500) recent;

-- name: RetryIntentList :many
-- Failed or retrying asynchronous work of the organization, newest first: webhook deliveries waiting for a
-- retry (pending) or dead-lettered (dead), and distance computations that failed (failed).
SELECT id, queue_name, job_key, payload, status, retry_count, error_message, next_retry_at, created_at, updated_at
FROM (
    SELECT d.id, 'webhook-delivery'::text AS queue_name, d.id::text AS job_key,
           jsonb_build_object('webhook_id', d.webhook_id, 'event_id', d.event_id, 'event_type', d.event_type) AS payload,
           CASE WHEN d.status = 'failed' THEN 'dead' ELSE 'pending' END::text AS status,
           d.attempt_count AS retry_count, d.last_error AS error_message, d.next_retry_at, d.created_at, d.updated_at
    FROM webhook_deliveries d
    WHERE d.status = 'failed' OR (d.status = 'pending' AND d.attempt_count > 0 AND d.response_status IS DISTINCT FROM 200)
    UNION ALL
    SELECT s.id, 'distance-engine'::text, s.id::text,
           jsonb_build_object('sessionId', s.id, 'employeeId', s.employee_id),
           'failed'::text, 0, ss.last_error, NULL::timestamptz, s.created_at, s.updated_at
    FROM attendance_sessions s
    LEFT JOIN session_summaries ss ON ss.organization_id = s.organization_id AND ss.session_id = s.id
    WHERE s.distance_recalculation_status = 'failed'
) intents
WHERE @status::text = 'all' OR intents.status = @status::text
ORDER BY updated_at DESC, id
LIMIT @row_limit OFFSET @row_offset;

-- name: RetryIntentCount :one
SELECT count(*)
FROM (
    SELECT CASE WHEN d.status = 'failed' THEN 'dead' ELSE 'pending' END::text AS status
    FROM webhook_deliveries d
    WHERE d.status = 'failed' OR (d.status = 'pending' AND d.attempt_count > 0 AND d.response_status IS DISTINCT FROM 200)
    UNION ALL
    SELECT 'failed'::text FROM attendance_sessions s WHERE s.distance_recalculation_status = 'failed'
) intents
WHERE @status::text = 'all' OR intents.status = @status::text;
