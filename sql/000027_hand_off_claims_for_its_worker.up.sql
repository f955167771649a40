-- 000027 the hand-off claims deliveries for the worker of its own process (app.hand_off).
--
-- Why: after a hand-off committed, its deliveries waited for a worker: the NOTIFY woke one, which then
-- claimed them in a transaction of its own (find them through the due index, lock them and their
-- webhook, count the attempt, move them a lease ahead: a second version of every delivery row, with an
-- entry in each of its indexes) before it could send. Now the listener's hand-off (a small one: at most
-- 64 events) asks for as many claims as it could reserve senders of its process's worker (at most half
-- of the idle ones), and the deliveries it makes for a webhook whose circuit is closed are inserted
-- claimed for their first attempt and answered after the events (rows with claim_id set); the listener
-- gives them to the worker once the hand-off committed. A delivery is still claimed once per attempt
-- and sent only while its claim is current; the hand-off with p_claims 0 (the default,
-- app.dispatch_events, the backlog's hand-off) claims nothing, as before.
-- app.hand_off replaces app.hand_off_events (its name says less: it hands off deliveries too), which
-- stays for one release as a wrapper, so that a process of the release before keeps handing off while a
-- rolling deploy replaces it.
-- Locks: none beyond replacing functions.

DROP FUNCTION app.hand_off_events(uuid[], uuid[], bigint[]);

CREATE FUNCTION app.hand_off(p_orgs uuid[], p_ids uuid[], p_xids bigint[], p_claims integer DEFAULT 0,
                             p_lease_seconds double precision DEFAULT 0)
    RETURNS TABLE (stream_id bigint, organization_id uuid, stream_event text, stream_payload jsonb,
                   created_at timestamptz, prev_head bigint,
                   claim_id uuid, claim_webhook_id uuid, claim_event_id uuid, claim_event_type text,
                   claim_url text, claim_secret text, claim_payload jsonb, claim_trace_context text)
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
        RETURN NEXT; -- the claim_* columns stay NULL
    END LOOP;
    -- Every stamped event's deliveries, one per active webhook subscribed to its type: one statement for
    -- the hand-off (a probe of the organization's active webhooks per event), in the events' order. The
    -- first p_claims of those whose webhook's circuit is closed (as read now, without the webhook's lock
    -- a worker's claim takes: a circuit opening meanwhile lets these attempts through, and their
    -- failures count) are made claimed for their first attempt, in the state a worker's claim leaves
    -- (attempt counted, due a lease after now: clock_timestamp, not the hand-off's start), and answered
    -- as rows of their own after the events': the caller's worker sends them once this commits, with no
    -- claim of its own. Should it never send them, their lease ends and any worker claims them
    -- (at-least-once, as for any claim). A replayed event's deliveries exist already: nothing is made,
    -- nothing claimed again.
    RETURN QUERY
    WITH made AS (
    INSERT INTO public.webhook_deliveries (organization_id, webhook_id, event_id, event_type, attempt_count,
                                           next_retry_at)
    SELECT x.organization_id, x.webhook_id, x.event_id, x.event_type,
           CASE WHEN x.claimed THEN 1 ELSE 0 END,
           CASE WHEN x.claimed THEN clock_timestamp() + make_interval(secs => p_lease_seconds) ELSE now() END
      FROM (SELECT w.organization_id, w.id AS webhook_id, d.i AS event_id, d.t AS event_type, d.n,
                   w.circuit_open_until IS NULL
                   AND count(*) FILTER (WHERE w.circuit_open_until IS NULL) OVER (ORDER BY d.n, w.id) <= p_claims
                       AS claimed
              FROM unnest(d_orgs, d_ids, d_types) WITH ORDINALITY AS d(o, i, t, n)
              JOIN public.webhooks w ON w.organization_id = d.o AND w.is_active AND d.t = ANY (w.events)) x
     ORDER BY x.n, x.webhook_id
    ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING
    RETURNING webhook_deliveries.organization_id, webhook_deliveries.id, webhook_deliveries.webhook_id,
              webhook_deliveries.event_id, webhook_deliveries.event_type, webhook_deliveries.attempt_count)
    SELECT NULL::bigint, m.organization_id, NULL::text, NULL::jsonb, NULL::timestamptz, NULL::bigint,
           m.id, m.webhook_id, m.event_id, m.event_type, w.url, w.secret, e.payload, e.trace_context
      FROM made m
      -- probes by primary key from each claimed row, however the planner would join (OFFSET 0 keeps each
      -- a subquery of its own: on tables the statistics think tiny, a join may read every event of the
      -- organization)
      CROSS JOIN LATERAL (SELECT x.url, x.secret FROM public.webhooks x
                           WHERE x.organization_id = m.organization_id AND x.id = m.webhook_id OFFSET 0) w
      CROSS JOIN LATERAL (SELECT y.payload, y.trace_context FROM public.webhook_events y
                           WHERE y.organization_id = m.organization_id AND y.id = m.event_id OFFSET 0) e
     WHERE m.attempt_count = 1;
    -- When it claimed for a worker: one more row, all NULL, when deliveries of these events are left for
    -- the workers to claim (beyond p_claims, of a circuit not closed, or made before, as webhook.test's
    -- are): without it the caller's worker need not be woken for this hand-off.
    IF p_claims > 0 THEN
        RETURN QUERY
        SELECT NULL::bigint, NULL::uuid, NULL::text, NULL::jsonb, NULL::timestamptz, NULL::bigint,
               NULL::uuid, NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::jsonb, NULL::text
         WHERE EXISTS (SELECT FROM unnest(p_orgs, p_ids) AS u(o, i)
                        CROSS JOIN LATERAL (SELECT FROM public.webhook_deliveries d -- a probe per event
                                             WHERE d.organization_id = u.o AND d.event_id = u.i
                                               AND d.status = 'pending' AND d.attempt_count = 0 OFFSET 0) x);
    END IF;
    IF last > 0 THEN
        PERFORM pg_notify(app.stream_channel(), last::text);
    END IF;
END
$$;

-- For the release before (see above): its answer, without claims.
CREATE FUNCTION app.hand_off_events(p_orgs uuid[], p_ids uuid[], p_xids bigint[])
    RETURNS TABLE (stream_id bigint, organization_id uuid, stream_event text, stream_payload jsonb,
                   created_at timestamptz, prev_head bigint)
    LANGUAGE sql
    AS $$ SELECT h.stream_id, h.organization_id, h.stream_event, h.stream_payload, h.created_at, h.prev_head
            FROM app.hand_off(p_orgs, p_ids, p_xids) AS h $$;

-- Unchanged, recreated after its callee.
CREATE OR REPLACE FUNCTION app.dispatch_events(p_orgs uuid[], p_ids uuid[], p_xids bigint[]) RETURNS bigint
    LANGUAGE sql
    AS $$ SELECT coalesce(max(h.stream_id), 0) FROM app.hand_off(p_orgs, p_ids, p_xids) AS h $$;
