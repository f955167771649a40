-- 000003 events: the outbox (webhook_events), webhooks and their deliveries, the publication the
-- logical-replication listener reads, and retention.
--
-- Why: a change and its event commit together (triggers write the outbox in the same transaction), and the
-- listener carries committed events on in commit order, so nothing is lost on a crash and nothing is sent
-- for a change that rolled back. The listener stamps each event with stream_id, its position in commit
-- order: SSE ids and replay use it, because identity values are not commit order.
-- Locks: creates objects only. The publication covers webhook_events inserts and nothing else.

DO $$
BEGIN
    -- Background work (listener hand-off, delivery worker) runs as this role: it sees the webhook tables
    -- of every organization and nothing else.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_worker') THEN
        CREATE ROLE fieldtrack_worker NOLOGIN NOBYPASSRLS;
    END IF;
    EXECUTE format('GRANT fieldtrack_worker TO %I', current_user);
END
$$;

GRANT fieldtrack_worker TO fieldtrack_authenticator;
GRANT USAGE ON SCHEMA app TO fieldtrack_worker;

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

-- app.emit appends one event to the outbox. SECURITY DEFINER: the triggers that call it run as the
-- caller, who may not write the outbox directly.
CREATE FUNCTION app.emit(p_org uuid, p_type text, p_data jsonb, p_stream_event text DEFAULT NULL,
                         p_stream_payload jsonb DEFAULT NULL) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    event_id uuid := gen_random_uuid();
BEGIN
    -- Callable by the API role (its triggers run as it): only for the caller's own organization.
    IF current_setting('role', true) = 'fieldtrack_api' AND p_org IS DISTINCT FROM app.org_id() THEN
        RAISE EXCEPTION 'cannot emit events for another organization' USING ERRCODE = '42501';
    END IF;
    INSERT INTO webhook_events (organization_id, id, event_type, payload, stream_event, stream_payload)
    VALUES (p_org, event_id, p_type,
            jsonb_build_object('id', event_id, 'type', p_type, 'version', 1, 'occurred_at', now(),
                               'organization_id', p_org, 'data', p_data),
            p_stream_event, p_stream_payload);
    RETURN event_id;
END
$$;
REVOKE ALL ON FUNCTION app.emit(uuid, text, jsonb, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.emit(uuid, text, jsonb, text, jsonb) TO fieldtrack_api;

CREATE FUNCTION app.attendance_sessions_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    s    jsonb;
    data jsonb;
BEGIN
    -- Read the row again: on check-out the distance trigger has updated it since.
    SELECT to_jsonb(a) INTO s FROM attendance_sessions a WHERE a.organization_id = NEW.organization_id AND a.id = NEW.id;
    IF TG_OP = 'INSERT' THEN
        data := jsonb_build_object('employee_id', NEW.employee_id, 'session_id', NEW.id, 'checkin_at', NEW.checkin_at);
        PERFORM app.emit(NEW.organization_id, 'session.checkin', data, 'session.checkin',
                         jsonb_build_object('sessionId', NEW.id, 'employeeId', NEW.employee_id, 'session', s));
        PERFORM app.emit(NEW.organization_id, 'employee.checked_in', data);
    ELSE
        data := jsonb_build_object('employee_id', NEW.employee_id, 'session_id', NEW.id,
                                   'checkin_at', NEW.checkin_at, 'checkout_at', NEW.checkout_at);
        PERFORM app.emit(NEW.organization_id, 'session.checkout', data, 'session.checkout',
                         jsonb_build_object('sessionId', NEW.id, 'employeeId', NEW.employee_id, 'session', s));
        PERFORM app.emit(NEW.organization_id, 'employee.checked_out', data);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER attendance_sessions_events_checkin AFTER INSERT ON attendance_sessions
    FOR EACH ROW EXECUTE FUNCTION app.attendance_sessions_events();
-- Named to sort after attendance_sessions_after_checkout, so the event carries the computed distance.
CREATE TRIGGER attendance_sessions_events_checkout AFTER UPDATE OF checkout_at ON attendance_sessions
    FOR EACH ROW WHEN (OLD.checkout_at IS NULL AND NEW.checkout_at IS NOT NULL)
    EXECUTE FUNCTION app.attendance_sessions_events();

CREATE FUNCTION app.employees_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM app.emit(NEW.organization_id, 'employee.created',
                     jsonb_build_object('employee_id', NEW.id, 'employee_code', NEW.employee_code,
                                        'name', NEW.name, 'created_at', NEW.created_at));
    RETURN NULL;
END
$$;

CREATE TRIGGER employees_events AFTER INSERT ON employees
    FOR EACH ROW EXECUTE FUNCTION app.employees_events();

CREATE FUNCTION app.expenses_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM app.emit(NEW.organization_id, 'expense.created',
                         jsonb_build_object('expense_id', NEW.id, 'employee_id', NEW.employee_id, 'amount', NEW.amount,
                                            'description', NEW.description, 'submitted_at', NEW.submitted_at),
                         'expense.created',
                         jsonb_build_object('expenseId', NEW.id, 'employeeId', NEW.employee_id, 'amount', NEW.amount));
    ELSIF NEW.status IN ('APPROVED', 'REJECTED') THEN
        PERFORM app.emit(NEW.organization_id, 'expense.' || lower(NEW.status),
                         jsonb_build_object('expense_id', NEW.id, 'employee_id', NEW.employee_id, 'amount', NEW.amount,
                                            'description', NEW.description,
                                            CASE WHEN NEW.status = 'APPROVED' THEN 'approved_by' ELSE 'rejected_by' END,
                                            NEW.reviewed_by, 'reviewed_at', NEW.reviewed_at)
                         || CASE WHEN NEW.status = 'REJECTED'
                                 THEN jsonb_build_object('rejection_comment', NEW.rejection_comment)
                                 ELSE '{}'::jsonb END,
                         'expense.status',
                         jsonb_build_object('expenseId', NEW.id, 'employeeId', NEW.employee_id, 'status', NEW.status));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER expenses_events_created AFTER INSERT ON expenses
    FOR EACH ROW EXECUTE FUNCTION app.expenses_events();
CREATE TRIGGER expenses_events_reviewed AFTER UPDATE OF status ON expenses
    FOR EACH ROW WHEN (OLD.status = 'PENDING' AND NEW.status <> 'PENDING')
    EXECUTE FUNCTION app.expenses_events();

-- the listener's hand-off ---------------------------------------------------------------------------------

-- app.dispatch_events stamps the events of committed transactions (in the order given) with their stream
-- positions and records one delivery per subscribed active webhook, then notifies every server process.
-- Idempotent: an event already stamped (WAL replayed after a crash before the acknowledgement) is skipped,
-- and deliveries are unique per (event, webhook).
-- A commit is flushed to the WAL, and can reach the listener, a moment before it becomes visible to other
-- sessions: first it waits until every given event is visible (each statement takes a new snapshot), so
-- none is skipped for being early. Only rows still invisible after 10 s (deleted with their organization)
-- are given up, with a warning. Returns the last stream position assigned (0 when none).
CREATE FUNCTION app.dispatch_events(p_orgs uuid[], p_ids uuid[]) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    ev      record;
    sid     bigint;
    etype   text;
    last    bigint := 0;
    visible integer;
    waited  integer := 0;
BEGIN
    LOOP
        SELECT count(*) INTO visible
          FROM unnest(p_orgs, p_ids) AS u(o, i)
          JOIN webhook_events e ON e.organization_id = u.o AND e.id = u.i;
        EXIT WHEN visible >= cardinality(p_ids);
        waited := waited + 1;
        IF waited > 10000 THEN
            RAISE WARNING '% outbox events never became visible; skipped', cardinality(p_ids) - visible;
            EXIT;
        END IF;
        PERFORM pg_sleep(0.001);
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
        PERFORM pg_notify('fieldtrack_stream', last::text);
    END IF;
    RETURN last;
END
$$;

-- How many events the listener has not stamped yet (the backlog; rows visible to the caller).
CREATE FUNCTION app.outbox_backlog() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM webhook_events WHERE stream_id IS NULL $$;

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
-- queue retries and test deliveries.
GRANT SELECT (organization_id, id, url, events, is_active, failure_streak, circuit_open_until, disabled_reason,
              created_at, updated_at),
      INSERT (organization_id, url, secret, events, is_active),
      UPDATE (url, secret, events, is_active, failure_streak, circuit_open_until, disabled_reason),
      DELETE
    ON webhooks TO fieldtrack_api;
GRANT SELECT, INSERT (organization_id, id, event_type, payload) ON webhook_events TO fieldtrack_api;
GRANT SELECT, INSERT (organization_id, webhook_id, event_id, event_type),
      UPDATE (status, next_retry_at, last_error) ON webhook_deliveries TO fieldtrack_api;
GRANT SELECT ON webhook_delivery_attempts TO fieldtrack_api;
GRANT SELECT ON app.stream_state TO fieldtrack_api, fieldtrack_worker;

-- The worker role: everything about delivering, in every organization.
GRANT SELECT, UPDATE ON webhooks TO fieldtrack_worker;
GRANT SELECT, UPDATE (stream_id, dispatched_at) ON webhook_events TO fieldtrack_worker;
GRANT SELECT, INSERT, UPDATE ON webhook_deliveries, webhook_delivery_attempts TO fieldtrack_worker;
GRANT USAGE ON SEQUENCE app.stream_seq TO fieldtrack_worker;

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_events FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_delivery_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_delivery_attempts FORCE ROW LEVEL SECURITY;

CREATE POLICY webhooks_admin ON webhooks FOR ALL TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN')
    WITH CHECK (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');
CREATE POLICY webhook_events_admin_select ON webhook_events FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');
CREATE POLICY webhook_events_admin_insert ON webhook_events FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN'
        AND event_type = 'webhook.test');
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
