-- 000028 app.citus_distribute(): the one step that turns this schema, migrated on a Citus coordinator,
-- into tables distributed by organization_id (README "Scaling past one Postgres").
--
-- Why: the schema was made for it (every tenant table keyed by organization_id), but a few of its forms
-- are refused by Citus, and single-node Postgres should keep them (they are cheaper there). So nothing
-- here changes a single-node database: `fieldtrack migrate up` calls this function after the migrations
-- when the citus extension is installed in the database, and it is idempotent (a table already
-- distributed is skipped), so it runs after every later migration too. What it does, in order:
-- * The roles whose connections the coordinator opens to the workers (it connects as the current
--   user: fieldtrack_api after the request's role switch, fieldtrack_worker, fieldtrack_owner inside
--   definer functions) get LOGIN. They have no password: inter-node authentication is the operator's
--   (pg_hba.conf and .pgpass or certificates on every node; the README says how).
-- * Policies are rewritten without subqueries, which Citus cannot send to the shards: `(SELECT
--   app.org_id())` becomes `app.org_id()` (the same value; on Postgres the subquery form is read once
--   per statement, the function call once per row it filters), and session_summaries' EXISTS on its
--   session becomes the session's employee, kept on the row by a trigger.
-- * org_dashboard_snapshot is made of app.org_dashboard_figures, one organization at a time.
-- * Unique keys without organization_id are made per organization: receipts' id (a random UUID) and
--   the outbox's stream position.
-- * organizations, users (whose emails are unique across organizations), refresh tokens (found by their
--   hash alone) and analysts' logins become reference tables, copied to every node; every other tenant
--   table, passwords and login sessions too, is distributed by organization_id and colocated with
--   employees, parents before children. A login session's key becomes (organization_id, id), and the
--   refresh tokens' foreign key to it goes (a reference table cannot point at a distributed one).
--   Internal tables without an organization (keys, the stream's state, snapshot bookkeeping) stay on
--   the coordinator.
-- * The column-level INSERT grants are widened to the whole table on the shards only (by
--   app.citus_propagate, run after it): the coordinator checks the columns a request names (on the
--   distributed table, as before), then sends the shard an INSERT of every column with the defaults
--   filled in.
-- Locks: distributing a table copies it and takes its lock for that long; run it before the load, or
-- in a maintenance window for a database that already has data.

CREATE FUNCTION app.citus_distribute(p_shard_count integer DEFAULT 32) RETURNS TABLE (table_name regclass, done text)
    LANGUAGE plpgsql
    SET citus.enable_unsafe_triggers = on
    SET citus.multi_shard_modify_mode = 'sequential'
    AS $$
DECLARE
    r       record;
    t       text;
    q       text;
    wc      text;
    fks     text[] := '{}';
    -- Names, not oids: Citus replaces a table it converts with a new one of the same name.
    reference_tables constant text[] := ARRAY[
        'public.organizations', 'public.users', 'app.refresh_tokens', 'app.analyst_logins'];
    -- Parents before children (foreign keys between distributed tables must be colocated).
    distributed_tables constant text[] := ARRAY[
        'public.employees', 'app.user_passwords', 'app.auth_sessions', 'public.tracking_settings', 'public.api_keys', 'public.admin_audit_log',
        'public.admin_sessions', 'public.webhooks', 'public.webhook_events', 'public.attendance_sessions',
        'public.expenses', 'public.receipts', 'public.gps_locations', 'public.session_summaries',
        'public.employee_daily_metrics', 'public.employee_last_state', 'public.employee_latest_sessions',
        'public.employee_metrics_snapshot', 'public.pending_expenses', 'public.webhook_deliveries',
        'public.webhook_delivery_attempts', 'app.employee_code_counters'];
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'app.citus_distribute: the citus extension is not installed in this database';
    END IF;

    ALTER ROLE fieldtrack_api LOGIN;
    ALTER ROLE fieldtrack_worker LOGIN;
    ALTER ROLE fieldtrack_owner LOGIN;
    ALTER ROLE fieldtrack_issuer LOGIN;
    -- A trust rule off loopback would let anyone log in as these roles (one bypasses row-level
    -- security): refuse to distribute until pg_hba.conf is made safe, on every node.
    PERFORM app.citus_check_logins();
    -- Later migrations create triggers on distributed tables (ours touch the organization's own rows only;
    -- the setting lets a table's owner create triggers, nothing more).
    EXECUTE format('ALTER DATABASE %I SET citus.enable_unsafe_triggers = on', current_database());

    -- Policies: the subquery form of the claim readers becomes the plain call.
    FOR r IN
        SELECT p.schemaname, p.tablename, p.policyname, p.permissive, p.roles, p.cmd, p.qual, p.with_check
          FROM pg_policies p
         WHERE p.schemaname IN ('public', 'app')
           AND (p.qual ~ '\( SELECT app\.\w+\(\) AS \w+\)' OR p.with_check ~ '\( SELECT app\.\w+\(\) AS \w+\)')
    LOOP
        q := regexp_replace(r.qual, '\( SELECT (app\.\w+\(\)) AS \w+\)', '\1', 'g');
        wc := regexp_replace(r.with_check, '\( SELECT (app\.\w+\(\)) AS \w+\)', '\1', 'g');
        EXECUTE format('DROP POLICY %I ON %I.%I', r.policyname, r.schemaname, r.tablename);
        EXECUTE format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s%s%s', r.policyname, r.schemaname,
                       r.tablename, r.permissive, r.cmd,
                       (SELECT string_agg(quote_ident(x), ', ') FROM unnest(r.roles) x),
                       CASE WHEN q IS NOT NULL THEN format(' USING (%s)', q) ELSE '' END,
                       CASE WHEN wc IS NOT NULL THEN format(' WITH CHECK (%s)', wc) ELSE '' END);
    END LOOP;

    -- session_summaries: visible to whoever sees its session (an admin, or the session's employee).
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'public.session_summaries'::regclass
                                              AND attname = 'employee_id' AND NOT attisdropped) THEN
        ALTER TABLE public.session_summaries ADD COLUMN employee_id uuid;
        UPDATE public.session_summaries ss SET employee_id = s.employee_id
          FROM public.attendance_sessions s
         WHERE s.organization_id = ss.organization_id AND s.id = ss.session_id;
        ALTER TABLE public.session_summaries ALTER COLUMN employee_id SET NOT NULL;
        CREATE TRIGGER session_summaries_employee BEFORE INSERT ON public.session_summaries
            FOR EACH ROW EXECUTE FUNCTION app.session_summary_employee();
        DROP POLICY session_summaries_select ON public.session_summaries;
        CREATE POLICY session_summaries_select ON public.session_summaries FOR SELECT TO fieldtrack_api
            USING (organization_id = app.org_id() AND (app.role() = 'ADMIN' OR employee_id = app.employee_id()));
    END IF;

    -- Login sessions are distributed with their organization's rows, keyed by it (000031); the refresh
    -- tokens, found by their hash alone, are a reference table, which cannot point at them.
    IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'app.refresh_tokens'::regclass AND contype = 'f'
                                           AND confrelid = 'app.auth_sessions'::regclass) THEN
        EXECUTE (SELECT format('ALTER TABLE app.refresh_tokens DROP CONSTRAINT %I', conname) FROM pg_constraint
                  WHERE conrelid = 'app.refresh_tokens'::regclass AND contype = 'f'
                    AND confrelid = 'app.auth_sessions'::regclass);
    END IF;
    IF (SELECT array_length(conkey, 1) FROM pg_constraint
         WHERE conrelid = 'app.auth_sessions'::regclass AND contype = 'p') = 1 THEN
        ALTER TABLE app.auth_sessions DROP CONSTRAINT auth_sessions_pkey;
        ALTER TABLE app.auth_sessions ADD PRIMARY KEY (organization_id, id);
    END IF;
    -- The triggers of reference tables act from the coordinator's copy alone (000031).
    CREATE OR REPLACE FUNCTION app.on_coordinator() RETURNS boolean
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $f$ SELECT citus_is_coordinator() $f$;

    -- The dashboard's figures, one organization's lookups at a time (app.org_dashboard_figures).
    CREATE OR REPLACE VIEW public.org_dashboard_snapshot WITH (security_invoker = true) AS
    SELECT o.id AS organization_id,
           coalesce(f.active, 0)::integer AS active_employee_count,
           coalesce(f.recent, 0)::integer AS recent_employee_count,
           coalesce(f.inactive, 0)::integer AS inactive_employee_count,
           coalesce(f.today, 0)::integer AS active_employees_today,
           coalesce(f.sessions, 0)::integer AS today_session_count,
           coalesce(f.km, 0)::numeric(14,3) AS today_distance_km,
           coalesce(f.pending, 0)::integer AS pending_expense_count,
           coalesce(f.pending_amount, 0)::numeric(14,2) AS pending_expense_amount,
           now() AS updated_at
      FROM public.organizations o
     CROSS JOIN LATERAL app.org_dashboard_figures(o.id, o.time_zone) f;

    -- Unique keys per organization.
    IF EXISTS (SELECT FROM pg_constraint WHERE conname = 'receipts_id_key'
                                           AND conrelid = 'public.receipts'::regclass) THEN
        ALTER TABLE public.receipts DROP CONSTRAINT receipts_id_key;
        CREATE INDEX receipts_id ON public.receipts (id);
    END IF;
    IF EXISTS (SELECT FROM pg_index WHERE indexrelid = 'public.webhook_events_stream_id'::regclass AND indisunique) THEN
        DROP INDEX public.webhook_events_stream_id;
        CREATE INDEX webhook_events_stream_id ON public.webhook_events (stream_id) WHERE stream_id IS NOT NULL;
        CREATE UNIQUE INDEX webhook_events_stream_position ON public.webhook_events (organization_id, stream_id)
            WHERE stream_id IS NOT NULL;
    END IF;

    -- Foreign keys to the reference tables are taken off meanwhile and put back at the end: made into
    -- a reference table while a local table still pointed at it, Citus would convert that table (and
    -- its whole foreign-key graph, with the views on it) into a local table of its own.
    FOR r IN
        SELECT c.conrelid::regclass AS rel, c.conname, pg_get_constraintdef(c.oid) AS def
          FROM pg_constraint c
         WHERE c.contype = 'f' AND c.confrelid = ANY (reference_tables::regclass[])
           AND NOT EXISTS (SELECT FROM pg_dist_partition d WHERE d.logicalrelid = c.confrelid)
    LOOP
        fks := fks || format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.rel, r.conname, r.def);
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.rel, r.conname);
    END LOOP;

    FOREACH t IN ARRAY reference_tables LOOP
        IF NOT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = t::regclass) THEN
            RAISE NOTICE 'citus_distribute: reference table %', t;
            PERFORM create_reference_table(t::regclass);
            table_name := t::regclass; done := 'reference'; RETURN NEXT;
        END IF;
    END LOOP;
    FOREACH t IN ARRAY distributed_tables LOOP
        IF NOT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = t::regclass) THEN
            RAISE NOTICE 'citus_distribute: distributing %', t;
            IF t = 'public.employees' THEN
                PERFORM create_distributed_table(t::regclass, 'organization_id', shard_count => p_shard_count,
                                                 colocate_with => 'none');
            ELSE
                PERFORM create_distributed_table(t::regclass, 'organization_id', colocate_with => 'public.employees');
            END IF;
            table_name := t::regclass; done := 'distributed'; RETURN NEXT;
        END IF;
    END LOOP;

    FOREACH q IN ARRAY fks LOOP
        EXECUTE q;
    END LOOP;

END
$$;

-- Refuses (raises) when a node's pg_hba.conf trusts anyone off loopback as a role that
-- app.citus_distribute lets log in, or as all roles. Those logins exist so that the coordinator can
-- connect to the workers as them; they must be authenticated there (certificates, or a password and
-- .pgpass) and rejected from anywhere else. Reading pg_hba.conf needs a superuser: without one it only
-- warns.
CREATE FUNCTION app.citus_check_logins() RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    rule constant text := $q$SELECT count(*) FROM pg_hba_file_rules r
        WHERE r.auth_method = 'trust' AND r.type <> 'local'
          AND coalesce(r.address, 'all') NOT IN ('127.0.0.1', '::1')
          AND r.user_name && ARRAY['all', 'fieldtrack_api', 'fieldtrack_worker', 'fieldtrack_owner',
                                   'fieldtrack_issuer']$q$;
    n      bigint;
    node   record;
    unsafe boolean;
BEGIN
    EXECUTE rule INTO n;
    IF n > 0 THEN
        RAISE EXCEPTION 'pg_hba.conf trusts logins as the FieldTrack roles from off loopback on the coordinator'
            USING HINT = 'authenticate them (cert, or scram with a password) and reject them from other hosts: README "Scaling past one Postgres"';
    END IF;
    FOR node IN SELECT * FROM run_command_on_workers(rule) LOOP
        unsafe := CASE WHEN node.success THEN node.result::bigint > 0 ELSE true END; -- an error is no count
        IF unsafe THEN
            RAISE EXCEPTION 'pg_hba.conf on %:% trusts logins as the FieldTrack roles from off loopback (or could not be read: %)',
                node.nodename, node.nodeport, node.result
                USING HINT = 'authenticate them (cert, or scram with a password) and reject them from other hosts: README "Scaling past one Postgres"';
        END IF;
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'app.citus_check_logins: pg_hba.conf cannot be read without a superuser; check it by hand';
END
$$;
REVOKE ALL ON FUNCTION app.citus_check_logins() FROM PUBLIC;

-- What app.citus_distribute leaves to a transaction of its own, run after it: run_command_on_shards and
-- the function propagation reach the workers over connections of their own, which see only what was
-- committed. It answers how many grants and functions it sent, and fails when a shard could not be reached.
-- * Our functions on every node: Citus sends a function to the workers when it is created, unless its
--   signature names a table that was not distributed yet (app.tracking_settings_defaults returns a
--   tracking_settings row), as all of ours were when the migrations ran before the tables were
--   distributed. The shards' triggers and the delegated calls run them there.
-- * The column-level INSERT grants, widened to the whole table on the shards (see the header). A shard
--   made later (a move, a split) is made with the table's grants, so `fieldtrack migrate up` runs this
--   again (README: after rebalancing).
CREATE FUNCTION app.citus_propagate() RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    f        regprocedure;
    n        integer := 0;
    granted  integer;
    failed   integer;
    why      text;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
         WHERE p.pronamespace IN ('app'::regnamespace, 'public'::regnamespace, 'analytics'::regnamespace)
           AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                                     AND d.deptype = 'e') -- an extension's
           AND NOT EXISTS (SELECT FROM pg_dist_object o WHERE o.classid = 'pg_proc'::regclass AND o.objid = p.oid)
         ORDER BY p.oid
    LOOP
        PERFORM create_distributed_function(f);
        n := n + 1;
    END LOOP;
    -- A query routed to a shard runs there with the functions it calls (app.org_date in an analytics
    -- query, app.session_distance in a distance report, the snapshots' expected_* in a reconciliation),
    -- and those read the organization's own rows: its colocated shards and the reference tables, on that
    -- node, in the same transaction. Citus refuses any query from inside a shard's unless the session
    -- allows it: our PL/pgSQL functions do, while they run (not the database: analysts' and DBAs' own
    -- queries keep Citus's refusal).
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
         WHERE p.pronamespace IN ('app'::regnamespace, 'public'::regnamespace, 'analytics'::regnamespace)
           AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                                     AND d.deptype = 'e')
           AND p.prokind = 'f'
           -- the PL/pgSQL ones (all that read tables since 000030): the SQL claim readers stay inlined
           AND p.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'plpgsql')
           AND NOT coalesce('citus.allow_nested_distributed_execution=on' = ANY (p.proconfig), false)
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET citus.allow_nested_distributed_execution = on', f);
        n := n + 1;
    END LOOP;
    SELECT count(*), count(*) FILTER (WHERE NOT r.success), min(r.result) FILTER (WHERE NOT r.success)
      INTO granted, failed, why
      FROM (SELECT DISTINCT a.attrelid::regclass AS relid, r.rolname
              FROM pg_attribute a, aclexplode(a.attacl) g, pg_roles r
             WHERE a.attacl IS NOT NULL AND g.privilege_type = 'INSERT' AND r.oid = g.grantee) c
      JOIN pg_dist_partition d ON d.logicalrelid = c.relid AND d.partmethod = 'h',
           LATERAL run_command_on_shards(c.relid, 'GRANT INSERT ON %s TO ' || quote_ident(c.rolname)) r;
    IF failed > 0 THEN
        RAISE EXCEPTION 'app.citus_propagate: % of % shard grants failed (%); run fieldtrack migrate up again',
            failed, granted, why;
    END IF;
    RETURN n + granted;
END
$$;
REVOKE ALL ON FUNCTION app.citus_propagate() FROM PUBLIC;

-- One organization's dashboard figures, as org_dashboard_snapshot (000014) computes them: the view on Citus
-- (app.citus_distribute), where lateral joins from the organizations reference table into distributed
-- tables cannot be planned, and a function's lookups by the organization are each a query routed to its
-- node. Security invoker, as the view is: the caller's row-level security applies.
CREATE FUNCTION app.org_dashboard_figures(p_org uuid, p_time_zone text,
                                          OUT active bigint, OUT recent bigint, OUT inactive bigint,
                                          OUT today bigint, OUT sessions bigint, OUT km numeric,
                                          OUT pending bigint, OUT pending_amount numeric)
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    on_day constant date := (now() AT TIME ZONE p_time_zone)::date; -- the organization's today
BEGIN
    SELECT count(*) FILTER (WHERE l.is_checked_in),
           count(*) FILTER (WHERE NOT l.is_checked_in AND l.last_check_out_at >= now() - interval '24 hours'),
           count(*) FILTER (WHERE NOT l.is_checked_in
                            AND (l.last_check_out_at IS NULL OR l.last_check_out_at < now() - interval '24 hours')),
           count(*) FILTER (WHERE (l.last_check_in_at AT TIME ZONE p_time_zone)::date = on_day)
      INTO active, recent, inactive, today
      FROM public.employee_last_state l
      JOIN public.employees e ON e.organization_id = l.organization_id AND e.id = l.employee_id AND e.is_active
     WHERE l.organization_id = p_org;
    SELECT sum(d.sessions), sum(d.distance_km) INTO sessions, km
      FROM public.employee_daily_metrics d WHERE d.organization_id = p_org AND d.date = on_day;
    SELECT count(*), sum(p.amount) INTO pending, pending_amount
      FROM public.pending_expenses p WHERE p.organization_id = p_org;
END
$$;
GRANT EXECUTE ON FUNCTION app.org_dashboard_figures(uuid, text) TO fieldtrack_api, fieldtrack_analyst;

-- The session's employee on a summary row (Citus only: see app.citus_distribute).
CREATE FUNCTION app.session_summary_employee() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.employee_id IS NULL THEN
        SELECT s.employee_id INTO NEW.employee_id
          FROM public.attendance_sessions s
         WHERE s.organization_id = NEW.organization_id AND s.id = NEW.session_id;
    END IF;
    RETURN NEW;
END
$$;

REVOKE ALL ON FUNCTION app.citus_distribute(integer) FROM PUBLIC;

-- The request's claims, sent on to the workers (Citus only). set_config(..., true) sets them on the
-- coordinator alone; a SET LOCAL is sent to every worker connection of the transaction, those open now
-- and those opened later (citus.propagate_set_commands = 'local'), also when it runs inside a function.
-- The role is not: the coordinator connects to the workers as the current user, so the workers see the
-- same role without a SET ROLE (which would break the definer functions there).
CREATE FUNCTION app.citus_share_claims() RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('SET LOCAL app.org_id = %L', coalesce(current_setting('app.org_id', true), ''));
    EXECUTE format('SET LOCAL app.user_id = %L', coalesce(current_setting('app.user_id', true), ''));
    EXECUTE format('SET LOCAL app.role = %L', coalesce(current_setting('app.role', true), ''));
    EXECUTE format('SET LOCAL app.employee_id = %L', coalesce(current_setting('app.employee_id', true), ''));
    EXECUTE format('SET LOCAL request.jwt.claims = %L', coalesce(current_setting('request.jwt.claims', true), ''));
    EXECUTE format('SET LOCAL app.trace_context = %L', coalesce(current_setting('app.trace_context', true), ''));
    -- the role switched to on the coordinator, for app.request_role on the workers (which see the role
    -- the coordinator connects as: the owner of a definer function running there)
    EXECUTE format('SET LOCAL app.request_role = %L', coalesce(current_setting('role', true), ''));
END
$$;
GRANT EXECUTE ON FUNCTION app.citus_share_claims() TO fieldtrack_api, fieldtrack_issuer;
