-- 000027 reversed: app.hand_off_events as 000025 made it (it claims nothing) instead of app.hand_off,
-- and app.dispatch_events around it.
DROP FUNCTION app.hand_off_events(uuid[], uuid[], bigint[]);
DROP FUNCTION app.hand_off(uuid[], uuid[], bigint[], integer, double precision);
CREATE FUNCTION app.hand_off_events(p_orgs uuid[], p_ids uuid[], p_xids bigint[])
    RETURNS TABLE (stream_id bigint, organization_id uuid, stream_event text, stream_payload jsonb,
                   created_at timestamptz, prev_head bigint)
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
    ev        record;
    st        record;
    head      bigint;
    last      bigint := 0;
    pause     double precision := 0.001; -- the looks' budget, for the whole hand-off (as in 000003)
    sid       bigint;
    visible   boolean;
    stamped   boolean;
    waited    bigint[] := '{}';  -- transactions waited for (or given up on) already
    timed_out boolean := false;
    prev      text;
    d_orgs    uuid[] := '{}';   -- the stamped events whose deliveries are made at the end, in one statement
    d_ids     uuid[] := '{}';
    d_types   text[] := '{}';
BEGIN
    -- The position this hand-off's follow: the last the sequence gave, to any transaction.
    SELECT CASE WHEN q.is_called THEN q.last_value ELSE 0 END INTO head FROM app.stream_seq q;
    FOR ev IN SELECT u.o, u.i, u.x FROM unnest(p_orgs, p_ids, p_xids) WITH ORDINALITY AS u(o, i, x, n) ORDER BY u.n LOOP
        -- Stamped at the first try, as a rule. Otherwise the event was stamped already (a replay after a
        -- crash before the acknowledgement: skipped), or became visible after the UPDATE's snapshot
        -- (stamped at once), or is not visible yet: its transaction's lock is waited for, asleep, up to
        -- 2 s a transaction, then a few more looks (each statement takes a new snapshot) for writers that
        -- did not hold their lock (someone else held the key). The looks share one budget, about a third
        -- of a second, over the hand-off: a backlog of events deleted with their organization costs that
        -- once, not once each.
        LOOP
            UPDATE public.webhook_events e
               SET stream_id = nextval('app.stream_seq'), dispatched_at = now()
             WHERE e.organization_id = ev.o AND e.id = ev.i AND e.stream_id IS NULL
            RETURNING e.stream_id, e.event_type, e.stream_event, e.stream_payload, e.created_at INTO st;
            stamped := FOUND;
            EXIT WHEN stamped;
            SELECT e.stream_id INTO sid FROM public.webhook_events e WHERE e.organization_id = ev.o AND e.id = ev.i;
            visible := FOUND;
            EXIT WHEN visible AND sid IS NOT NULL;
            CONTINUE WHEN visible;
            IF ev.x IS NOT NULL AND NOT ev.x = ANY (waited) THEN
                waited := waited || ev.x;
                prev := current_setting('lock_timeout');
                PERFORM set_config('lock_timeout', '2s', true);
                BEGIN
                    PERFORM pg_advisory_xact_lock_shared(app.outbox_lock_key(ev.x));
                EXCEPTION WHEN lock_not_available THEN
                    timed_out := true;
                END;
                PERFORM set_config('lock_timeout', prev, true);
                CONTINUE;
            END IF;
            IF pause > 0.5 THEN
                IF timed_out THEN
                    RAISE EXCEPTION 'outbox event % is not visible yet; the hand-off will be retried', ev.i
                        USING ERRCODE = '55P03';
                END IF;
                RAISE WARNING 'outbox event % never became visible (deleted meanwhile); skipped', ev.i;
                EXIT;
            END IF;
            PERFORM pg_sleep(pause);
            pause := pause * 4;
        END LOOP;
        CONTINUE WHEN NOT stamped;
        d_orgs := d_orgs || ev.o;
        d_ids := d_ids || ev.i;
        d_types := d_types || st.event_type;
        last := st.stream_id;
        stream_id := st.stream_id;
        organization_id := ev.o;
        stream_event := st.stream_event;
        stream_payload := st.stream_payload;
        created_at := st.created_at;
        prev_head := head;
        RETURN NEXT;
    END LOOP;
    -- Every stamped event's deliveries, one per active webhook subscribed to its type: one statement for
    -- the hand-off (a probe of the organization's active webhooks per event), in the events' order.
    INSERT INTO public.webhook_deliveries (organization_id, webhook_id, event_id, event_type)
    SELECT w.organization_id, w.id, d.i, d.t
      FROM unnest(d_orgs, d_ids, d_types) WITH ORDINALITY AS d(o, i, t, n)
      JOIN public.webhooks w ON w.organization_id = d.o AND w.is_active AND d.t = ANY (w.events)
     ORDER BY d.n
    ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING;
    IF last > 0 THEN
        PERFORM pg_notify(app.stream_channel(), last::text);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION app.dispatch_events(p_orgs uuid[], p_ids uuid[], p_xids bigint[]) RETURNS bigint
    LANGUAGE sql
    AS $$ SELECT coalesce(max(h.stream_id), 0) FROM app.hand_off_events(p_orgs, p_ids, p_xids) AS h $$;
