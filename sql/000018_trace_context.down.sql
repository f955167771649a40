-- 000018 reversed: app.append_event as 000003 made it (with 000013's search_path), then the column.
CREATE OR REPLACE FUNCTION app.append_event(p_org uuid, p_type text, p_data jsonb, p_stream_event text,
                                            p_stream_payload jsonb) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    event_id uuid := gen_random_uuid();
BEGIN
    INSERT INTO webhook_events (organization_id, id, event_type, payload, stream_event, stream_payload)
    VALUES (p_org, event_id, p_type,
            jsonb_build_object('id', event_id, 'type', p_type, 'version', 1, 'occurred_at', now(),
                               'organization_id', p_org, 'data', p_data),
            p_stream_event, p_stream_payload);
    RETURN event_id;
END
$$;
ALTER TABLE webhook_events DROP COLUMN IF EXISTS trace_context;
