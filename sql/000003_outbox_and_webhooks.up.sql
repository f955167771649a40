-- 000003 the outbox (webhook_events) and webhooks: how every change's events reach SSE clients and
-- integrators. Every later noun emits its events through app.emit, defined here.
--
-- Why: a change and its event commit together (triggers call app.emit in the same transaction), and the
-- logical-replication listener carries committed events on in commit order, so nothing is lost on a crash
-- and nothing is sent for a change that rolled back. The listener's hand-off (app.dispatch_events) stamps
-- each event with stream_id, its position in commit order (SSE ids and replay use it, because identity
-- values are not commit order), and records one delivery per subscribed webhook; the delivery worker
-- sends them.
-- Locks: creates objects only. The publication covers webhook_events inserts and nothing else.

-- webhooks ------------------------------------------------------------------------------------------------

CREATE TABLE webhooks (
    organization_id    uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id                 uuid        NOT NULL DEFAULT gen_random_uuid(),
    url                text        NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    -- Needed in clear to sign deliveries; never readable by the API role (column grants below).
    secret             text        NOT NULL CHECK (length(secret) BETWEEN 16 AND 256),
    events             text[]      NOT NULL DEFAULT '{}',
    is_active          boolean     NOT NULL DEFAULT true,
    -- Circuit breaker: consecutive failed attempts, and until when deliveries are paused.
    failure_streak     integer     NOT NULL DEFAULT 0,
    circuit_open_until timestamptz,
    disabled_reason    text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id)
);

CREATE INDEX webhooks_active ON webhooks (organization_id) WHERE is_active;
CREATE TRIGGER webhooks_updated_at BEFORE UPDATE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

-- the outbox ----------------------------------------------------------------------------------------------

CREATE SEQUENCE app.stream_seq;

CREATE TABLE webhook_events (
    organization_id uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    event_type      text        NOT NULL,
    -- The webhook envelope {id, type, version, occurred_at, organization_id, data}.
    payload         jsonb       NOT NULL,
    -- For the admin SSE stream: the event name and payload the dashboard reads (NULL: not streamed).
    stream_event    text,
    stream_payload  jsonb,
    -- Position in commit order, stamped by the listener; NULL until it has handed the event off.
    stream_id       bigint,
    dispatched_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id)
);

-- The one index not led by organization_id: every process tails the stream in global commit order.
CREATE UNIQUE INDEX webhook_events_stream_id ON webhook_events (stream_id);
CREATE INDEX webhook_events_org_stream ON webhook_events (organization_id, stream_id) WHERE stream_id IS NOT NULL;

-- How far retention has deleted the stream: a client asking to resume from before this must refetch.
CREATE TABLE app.stream_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_through bigint  NOT NULL DEFAULT 0
);
INSERT INTO app.stream_state DEFAULT VALUES;

-- A commit reaches the WAL, and so the listener, a moment before the committing session leaves the
-- proc array and its rows become visible to other sessions. So that the hand-off can wait for that
-- moment without polling, every transaction that writes the outbox holds an advisory lock named after its
-- transaction id until it ends; Postgres releases a transaction's locks only after its commit is
-- visible. The key is the 32-bit transaction id (what the replication stream reports) under a prefix of
-- ours ("fTxt"), apart from any other advisory lock. Advisory locks are open to every login, and these
-- keys are predictable: the writer only tries the lock (a key someone else holds does not stop it), and
-- the hand-off waits with a timeout (see app.dispatch_events).
CREATE FUNCTION app.outbox_lock_key(p_xid bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT 7373650929523884032 + (p_xid % 4294967296) $$;

CREATE FUNCTION app.webhook_events_hold_xact() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_try_advisory_xact_lock(app.outbox_lock_key(txid_current()));
    RETURN NULL;
END
$$;

CREATE TRIGGER webhook_events_hold_xact BEFORE INSERT ON webhook_events
    FOR EACH STATEMENT EXECUTE FUNCTION app.webhook_events_hold_xact();

-- deliveries ----------------------------------------------------------------------------------------------

CREATE TABLE webhook_deliveries (
    organization_id uuid        NOT NULL,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    webhook_id      uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    -- pending: waiting for its next attempt; success; failed: dead-lettered after the last attempt.
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'success', 'failed')),
    attempt_count   integer     NOT NULL DEFAULT 0,
    response_status integer,
    response_body   text,
    last_error      text,
    next_retry_at   timestamptz DEFAULT now(),
    last_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT webhook_deliveries_once UNIQUE (organization_id, event_id, webhook_id),
    CONSTRAINT webhook_deliveries_webhook_fkey FOREIGN KEY (organization_id, webhook_id)
        REFERENCES webhooks (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_event_fkey FOREIGN KEY (organization_id, event_id)
        REFERENCES webhook_events (organization_id, id) ON DELETE CASCADE
);

-- The worker's queue: due pending deliveries across organizations.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_retry_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_org_created ON webhook_deliveries (organization_id, created_at DESC);
CREATE INDEX webhook_deliveries_org_webhook ON webhook_deliveries (organization_id, webhook_id, created_at DESC);
CREATE INDEX webhook_deliveries_org_failed ON webhook_deliveries (organization_id, last_attempt_at DESC)
    WHERE status = 'failed';
CREATE TRIGGER webhook_deliveries_updated_at BEFORE UPDATE ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

-- Every attempt, for the delivery log.
CREATE TABLE webhook_delivery_attempts (
    organization_id uuid        NOT NULL,
    delivery_id     uuid        NOT NULL,
    attempt         integer     NOT NULL,
    attempted_at    timestamptz NOT NULL DEFAULT now(),
    response_status integer,
    error           text,
    duration_ms     integer,
    PRIMARY KEY (organization_id, delivery_id, attempt),
    FOREIGN KEY (organization_id, delivery_id) REFERENCES webhook_deliveries (organization_id, id) ON DELETE CASCADE
);

-- emitting events -----------------------------------------------------------------------------------------

-- app.append_event appends one event to the outbox and returns its id. Only the two functions below, which
-- decide who may emit what, call it.
CREATE FUNCTION app.append_event(p_org uuid, p_type text, p_data jsonb, p_stream_event text,
                                 p_stream_payload jsonb) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
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
REVOKE ALL ON FUNCTION app.append_event(uuid, text, jsonb, text, jsonb) FROM PUBLIC;

-- app.emit is how the nouns' triggers emit their events. The triggers run as the caller, who may not write
-- the outbox: for the API role it is callable from a trigger only (never to forge an event in SQL), for the
-- caller's own organization.
CREATE FUNCTION app.emit(p_org uuid, p_type text, p_data jsonb, p_stream_event text DEFAULT NULL,
                         p_stream_payload jsonb DEFAULT NULL) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    IF current_setting('role', true) = 'fieldtrack_api'
        AND (pg_trigger_depth() = 0 OR p_org IS DISTINCT FROM app.org_id()) THEN
        RAISE EXCEPTION 'events are emitted by the changes that cause them' USING ERRCODE = '42501';
    END IF;
    RETURN app.append_event(p_org, p_type, p_data, p_stream_event, p_stream_payload);
END
$$;
REVOKE ALL ON FUNCTION app.emit(uuid, text, jsonb, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.emit(uuid, text, jsonb, text, jsonb) TO fieldtrack_api;

-- app.emit_webhook_test writes the synthetic webhook.test event an admin asks for (POST
-- /admin/webhooks/{id}/test) and returns its id.
CREATE FUNCTION app.emit_webhook_test(p_org uuid, p_webhook uuid) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    IF current_setting('role', true) = 'fieldtrack_api'
        AND (p_org IS DISTINCT FROM app.org_id() OR app.role() IS DISTINCT FROM 'ADMIN') THEN
        RAISE EXCEPTION 'only an admin of the organization can test its webhooks' USING ERRCODE = '42501';
    END IF;
    RETURN app.append_event(p_org, 'webhook.test', jsonb_build_object('webhook_id', p_webhook, 'test', true,
                                                                      'message', 'FieldTrack test webhook delivery'),
                            NULL, NULL);
END
$$;
REVOKE ALL ON FUNCTION app.emit_webhook_test(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.emit_webhook_test(uuid, uuid) TO fieldtrack_api;

-- the listener's hand-off ---------------------------------------------------------------------------------

-- The channel every server process listens on to learn that events were handed off. Server processes
-- LISTEN through app.listen_stream(), so the name is spelled only here.
CREATE FUNCTION app.stream_channel() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'fieldtrack_stream' $$;

CREATE FUNCTION app.listen_stream() RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('LISTEN %I', app.stream_channel());
END
$$;

-- app.dispatch_events hands off the events of committed transactions, in the order given: it stamps each
-- with its stream position and records one delivery per subscribed active webhook, then notifies every
-- server process. p_xids are the events' transaction ids (NULL for events known to be visible already).
-- Idempotent: an event already stamped (WAL replayed after a crash before the acknowledgement) is skipped,
-- and deliveries are unique per (event, webhook).
-- An event whose transaction is not visible yet (see app.outbox_lock_key) is waited for on that
-- transaction's lock, asleep, for up to 2 s a transaction. An event still invisible after its transaction
-- ended was deleted meanwhile (with its organization): it is skipped, with a warning. One still invisible
-- when the wait timed out (its transaction is slow to finish) fails the hand-off: the listener retries the
-- whole batch, so nothing is skipped that may yet appear. Returns the last stream position assigned (0 when
-- none).
CREATE FUNCTION app.dispatch_events(p_orgs uuid[], p_ids uuid[], p_xids bigint[]) RETURNS bigint
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

-- The listener's slot. Slot names are cluster-wide, so the name carries the database's: several FieldTrack
-- databases (say, tests) can share a cluster, each with its own slot.
CREATE FUNCTION app.outbox_slot() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT left('fieldtrack_events_' || regexp_replace(lower(current_database()), '[^a-z0-9_]', '_', 'g'), 63) $$;

-- Bytes of WAL the listener's slot holds back (NULL when the slot does not exist yet).
CREATE FUNCTION app.slot_lag_bytes() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$
        SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
          FROM pg_replication_slots WHERE slot_name = app.outbox_slot()
    $$;

-- Whether a listener is streaming from the slot right now (in any server process).
CREATE FUNCTION app.slot_active() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = app.outbox_slot()), false) $$;

-- The slot's WAL status (lost once max_slot_wal_keep_size invalidated it) and confirmed position, for the
-- listener; NULL while the slot does not exist.
CREATE FUNCTION app.slot_wal_status() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT wal_status FROM pg_replication_slots WHERE slot_name = app.outbox_slot() $$;

CREATE FUNCTION app.slot_confirmed_lsn() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = app.outbox_slot() $$;

-- Creates the slot unless it exists (needs the REPLICATION attribute); reports whether it created it.
CREATE FUNCTION app.create_outbox_slot() RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = app.outbox_slot()) THEN
        RETURN false;
    END IF;
    PERFORM pg_create_logical_replication_slot(app.outbox_slot(), 'pgoutput');
    RETURN true;
END
$$;

CREATE PUBLICATION fieldtrack_events FOR TABLE webhook_events WITH (publish = 'insert');

-- retention -----------------------------------------------------------------------------------------------

-- app.prune_events deletes handed-off events older than the retention (database setting
-- fieldtrack.event_retention, default 3 days) whose deliveries all succeeded (pending and dead-lettered
-- deliveries keep their event), and successful attempts' history with them. Returns how many it deleted.
CREATE FUNCTION app.prune_events() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    keep    interval := coalesce(nullif(current_setting('fieldtrack.event_retention', true), ''), '3 days')::interval;
    deleted integer;
    upto    bigint;
BEGIN
    WITH gone AS (
        DELETE FROM webhook_events e
         WHERE e.stream_id IS NOT NULL AND e.created_at < now() - keep
           AND NOT EXISTS (SELECT FROM webhook_deliveries d
                            WHERE d.organization_id = e.organization_id AND d.event_id = e.id AND d.status <> 'success')
        RETURNING e.stream_id
    )
    SELECT count(*), max(stream_id) INTO deleted, upto FROM gone;
    IF upto IS NOT NULL THEN
        UPDATE app.stream_state SET pruned_through = greatest(pruned_through, upto);
    END IF;
    RETURN deleted;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.schedule('fieldtrack-prune-events', '17 * * * *', 'SELECT app.prune_events()');
        -- pg_cron's own run log grows forever unless trimmed.
        PERFORM cron.schedule('fieldtrack-prune-cron-log', '23 3 * * *',
            $c$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days'$c$);
    END IF;
END
$$;

-- privileges and row-level security -----------------------------------------------------------------------

-- The API role: admins manage webhooks (never reading secrets), read events (SSE replay) and deliveries,
-- queue retries and test deliveries (the test event itself is written by app.emit).
GRANT SELECT (organization_id, id, url, events, is_active, failure_streak, circuit_open_until, disabled_reason,
              created_at, updated_at),
      INSERT (organization_id, url, secret, events, is_active),
      UPDATE (url, secret, events, is_active, failure_streak, circuit_open_until, disabled_reason),
      DELETE
    ON webhooks TO fieldtrack_api;
GRANT SELECT ON webhook_events TO fieldtrack_api;
GRANT SELECT, INSERT (organization_id, webhook_id, event_id, event_type),
      UPDATE (status, next_retry_at, last_error) ON webhook_deliveries TO fieldtrack_api;
GRANT SELECT ON webhook_delivery_attempts TO fieldtrack_api;
GRANT SELECT ON app.stream_state TO fieldtrack_api, fieldtrack_worker;

-- The worker role: everything about delivering, in every organization.
GRANT SELECT, UPDATE ON webhooks TO fieldtrack_worker;
GRANT SELECT, UPDATE (stream_id, dispatched_at) ON webhook_events TO fieldtrack_worker;
GRANT SELECT, INSERT, UPDATE ON webhook_deliveries, webhook_delivery_attempts TO fieldtrack_worker;
GRANT USAGE ON SEQUENCE app.stream_seq TO fieldtrack_worker;

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_delivery_attempts ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY webhooks_admin ON webhooks FOR ALL TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN')
    WITH CHECK (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');
CREATE POLICY webhook_events_admin_select ON webhook_events FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');
CREATE POLICY webhook_deliveries_admin ON webhook_deliveries FOR ALL TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN')
    WITH CHECK (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');
CREATE POLICY webhook_delivery_attempts_admin ON webhook_delivery_attempts FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');

CREATE POLICY webhooks_worker ON webhooks FOR ALL TO fieldtrack_worker USING (true) WITH CHECK (true);
CREATE POLICY webhook_events_worker ON webhook_events FOR ALL TO fieldtrack_worker USING (true) WITH CHECK (true);
CREATE POLICY webhook_deliveries_worker ON webhook_deliveries FOR ALL TO fieldtrack_worker USING (true) WITH CHECK (true);
CREATE POLICY webhook_delivery_attempts_worker ON webhook_delivery_attempts FOR ALL TO fieldtrack_worker
    USING (true) WITH CHECK (true);
