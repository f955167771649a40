-- 000018 trace context in the outbox: an event's trace joins the request that committed it to the
-- listener's hand-off and to every webhook attempt it causes.
--
-- Why: a traced request transaction sets app.trace_context (its W3C traceparent, only when the request is
-- sampled); app.append_event stores it with the event; the listener reads it from the replication stream
-- and starts its hand-off span under it, and the webhook worker starts each attempt's span under it and
-- sends it on as the attempt's traceparent header. Untraced requests store NULL and pay nothing.
-- Locks: adds a nullable column without a default (a catalog change: ACCESS EXCLUSIVE on webhook_events for
-- an instant, no rewrite); replaces a function.

ALTER TABLE webhook_events ADD COLUMN trace_context text;

COMMENT ON COLUMN webhook_events.trace_context IS
    'W3C traceparent of the request transaction that emitted the event (NULL when it was not traced).';

CREATE OR REPLACE FUNCTION app.append_event(p_org uuid, p_type text, p_data jsonb, p_stream_event text,
                                            p_stream_payload jsonb) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    event_id uuid := gen_random_uuid();
    -- Only a well-formed version-00 traceparent is kept: the setting is the server's, but nothing
    -- malformed should reach the consumers.
    v_trace  text := substring(current_setting('app.trace_context', true)
                               FROM '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
BEGIN
    INSERT INTO webhook_events (organization_id, id, event_type, payload, stream_event, stream_payload,
                                trace_context)
    VALUES (p_org, event_id, p_type,
            jsonb_build_object('id', event_id, 'type', p_type, 'version', 1, 'occurred_at', now(),
                               'organization_id', p_org, 'data', p_data),
            p_stream_event, p_stream_payload, v_trace);
    RETURN event_id;
END
$$;
