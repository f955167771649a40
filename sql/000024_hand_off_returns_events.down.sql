-- 000024 reversed: app.dispatch_events as 000003 made it, without app.hand_off_events.
CREATE OR REPLACE FUNCTION app.dispatch_events(p_orgs uuid[], p_ids uuid[], p_xids bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    ev        record;
    x         bigint;
    sid       bigint;
    etype     text;
    last      bigint := 0;
    missing   integer;
    timed_out boolean := false;
    pause     double precision := 0.001;
    prev      text := current_setting('lock_timeout');
BEGIN
    IF p_xids IS NOT NULL THEN
        PERFORM set_config('lock_timeout', '2s', true);
        -- Each statement takes a new snapshot, so a transaction waited for here is visible below.
        FOR x IN SELECT DISTINCT u.x FROM unnest(p_orgs, p_ids, p_xids) AS u(o, i, x)
                  WHERE NOT EXISTS (SELECT FROM webhook_events e WHERE e.organization_id = u.o AND e.id = u.i) LOOP
            BEGIN
                PERFORM pg_advisory_xact_lock_shared(app.outbox_lock_key(x));
            EXCEPTION WHEN lock_not_available THEN
                timed_out := true;
            END;
        END LOOP;
        PERFORM set_config('lock_timeout', prev, true);
    END IF;
    -- A few more looks, for writers that did not hold their lock (someone else held the key).
    LOOP
        SELECT count(*) INTO missing
          FROM unnest(p_orgs, p_ids) AS u(o, i)
         WHERE NOT EXISTS (SELECT FROM webhook_events e WHERE e.organization_id = u.o AND e.id = u.i);
        EXIT WHEN missing = 0;
        IF pause > 0.5 THEN
            IF timed_out THEN
                RAISE EXCEPTION '% outbox events are not visible yet; the hand-off will be retried', missing
                    USING ERRCODE = '55P03';
            END IF;
            RAISE WARNING '% outbox events never became visible (deleted meanwhile); skipped', missing;
            EXIT;
        END IF;
        PERFORM pg_sleep(pause);
        pause := pause * 4;
    END LOOP;
    FOR ev IN SELECT u.o, u.i FROM unnest(p_orgs, p_ids) WITH ORDINALITY AS u(o, i, n) ORDER BY u.n LOOP
        UPDATE webhook_events
           SET stream_id = nextval('app.stream_seq'), dispatched_at = now()
         WHERE organization_id = ev.o AND id = ev.i AND stream_id IS NULL
        RETURNING stream_id, event_type INTO sid, etype;
        CONTINUE WHEN NOT FOUND;
        INSERT INTO webhook_deliveries (organization_id, webhook_id, event_id, event_type)
        SELECT w.organization_id, w.id, ev.i, etype
          FROM webhooks w
         WHERE w.organization_id = ev.o AND w.is_active AND etype = ANY (w.events)
        ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING;
        last := sid;
    END LOOP;
    IF last > 0 THEN
        PERFORM pg_notify(app.stream_channel(), last::text);
    END IF;
    RETURN last;
END
$$;

DROP FUNCTION app.hand_off_events(uuid[], uuid[], bigint[]);
REVOKE SELECT ON SEQUENCE app.stream_seq FROM fieldtrack_worker;
