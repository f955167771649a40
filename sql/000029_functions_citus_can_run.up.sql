-- 000029 functions that both Postgres and Citus (issue 15) can run; on single-node Postgres they do
-- what they did.
--
-- * The snapshot upserts have no now() in their DO UPDATE: Citus takes only immutable functions there,
--   so the row's updated_at is the inserted row's (excluded.updated_at, whose default is the same now():
--   the transaction's start).
-- * app.measure_session takes and returns the row it is given whatever its type (a record): on a Citus
--   worker the session's triggers run on a shard, whose rows are of the shard's type
--   (attendance_sessions_102008), not of attendance_sessions. Its callers pass an attendance_sessions
--   row (or a shard's) and store the one it returns, as before. Its average speed is computed before its
--   INSERT (Citus evaluates the parts of a VALUES expression before the CASE around them).
-- Locks: none beyond replacing functions.

CREATE OR REPLACE FUNCTION app.refresh_employee_sessions(p_org uuid, p_employee uuid)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
DECLARE
    s public.attendance_sessions;
    closed_at timestamptz;
BEGIN
    PERFORM FROM public.employee_last_state l
      WHERE l.organization_id = p_org AND l.employee_id = p_employee FOR UPDATE;
    IF NOT FOUND THEN -- the employee is being deleted (cascade), or has no state row yet
        IF NOT EXISTS (SELECT FROM public.employees e WHERE e.organization_id = p_org AND e.id = p_employee) THEN
            RETURN;
        END IF;
        INSERT INTO public.employee_last_state (organization_id, employee_id) VALUES (p_org, p_employee)
        ON CONFLICT DO NOTHING;
        PERFORM FROM public.employee_last_state l
          WHERE l.organization_id = p_org AND l.employee_id = p_employee FOR UPDATE;
    END IF;
    SELECT a.* INTO s FROM public.attendance_sessions a
     WHERE a.organization_id = p_org AND a.employee_id = p_employee
     ORDER BY a.checkin_at DESC, a.id DESC LIMIT 1;
    SELECT a.checkout_at INTO closed_at FROM public.attendance_sessions a
     WHERE a.organization_id = p_org AND a.employee_id = p_employee AND a.checkout_at IS NOT NULL
     ORDER BY a.checkin_at DESC, a.id DESC LIMIT 1;
    UPDATE public.employee_last_state l
       SET last_session_id = s.id, is_checked_in = coalesce(s.id IS NOT NULL AND s.checkout_at IS NULL, false),
           last_check_in_at = s.checkin_at, last_check_out_at = closed_at, updated_at = now()
     WHERE l.organization_id = p_org AND l.employee_id = p_employee
       AND (l.last_session_id, l.is_checked_in, l.last_check_in_at, l.last_check_out_at)
           IS DISTINCT FROM (s.id, coalesce(s.id IS NOT NULL AND s.checkout_at IS NULL, false), s.checkin_at, closed_at);
    IF s.id IS NULL THEN
        DELETE FROM public.employee_latest_sessions l WHERE l.organization_id = p_org AND l.employee_id = p_employee;
        RETURN;
    END IF;
    INSERT INTO public.employee_latest_sessions AS l
           (organization_id, employee_id, session_id, latest_checkin, latest_checkout, total_distance_km,
            total_duration_seconds, distance_recalculation_status, session_updated_at)
    VALUES (p_org, p_employee, s.id, s.checkin_at, s.checkout_at, s.total_distance_km, s.total_duration_seconds,
            s.distance_recalculation_status, s.updated_at)
    ON CONFLICT (organization_id, employee_id) DO UPDATE
       SET session_id = excluded.session_id, latest_checkin = excluded.latest_checkin,
           latest_checkout = excluded.latest_checkout, total_distance_km = excluded.total_distance_km,
           total_duration_seconds = excluded.total_duration_seconds,
           distance_recalculation_status = excluded.distance_recalculation_status,
           session_updated_at = excluded.session_updated_at, updated_at = excluded.updated_at;
END
$function$
;

CREATE OR REPLACE FUNCTION app.add_daily(p_org uuid, p_employee uuid, p_date date, p_sessions integer, p_km numeric, p_seconds bigint, p_expenses integer, p_amount numeric)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
BEGIN
    IF p_sessions = 0 AND p_km = 0 AND p_seconds = 0 AND p_expenses = 0 AND p_amount = 0 THEN
        RETURN;
    END IF;
    IF p_sessions < 0 OR p_expenses < 0 THEN
        -- A removal: never a new row (its employee may be going, in a cascade), and a day left with
        -- nothing goes.
        UPDATE public.employee_daily_metrics d
           SET sessions = d.sessions + p_sessions, distance_km = d.distance_km + p_km,
               duration_seconds = d.duration_seconds + p_seconds, expenses_count = d.expenses_count + p_expenses,
               expenses_amount = d.expenses_amount + p_amount, updated_at = now()
         WHERE d.organization_id = p_org AND d.employee_id = p_employee AND d.date = p_date;
        DELETE FROM public.employee_daily_metrics d
         WHERE d.organization_id = p_org AND d.employee_id = p_employee AND d.date = p_date
           AND d.sessions = 0 AND d.expenses_count = 0;
        RETURN;
    END IF;
    INSERT INTO public.employee_daily_metrics AS d
           (organization_id, employee_id, date, sessions, distance_km, duration_seconds, expenses_count, expenses_amount)
    VALUES (p_org, p_employee, p_date, p_sessions, p_km, p_seconds, p_expenses, p_amount)
    ON CONFLICT (organization_id, employee_id, date) DO UPDATE
       SET sessions = d.sessions + excluded.sessions, distance_km = d.distance_km + excluded.distance_km,
           duration_seconds = d.duration_seconds + excluded.duration_seconds,
           expenses_count = d.expenses_count + excluded.expenses_count,
           expenses_amount = d.expenses_amount + excluded.expenses_amount, updated_at = excluded.updated_at;
END
$function$
;

CREATE OR REPLACE FUNCTION app.expenses_snapshots()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM app.add_daily(OLD.organization_id, OLD.employee_id, app.org_date(OLD.organization_id, OLD.submitted_at),
                              0, 0, 0, -1, -OLD.amount);
        IF OLD.status = 'APPROVED' THEN
            PERFORM app.add_metrics(OLD.organization_id, OLD.employee_id, 0, 0, 0, -OLD.amount);
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM app.add_daily(NEW.organization_id, NEW.employee_id, app.org_date(NEW.organization_id, NEW.submitted_at),
                              0, 0, 0, 1, NEW.amount);
        IF NEW.status = 'APPROVED' THEN
            PERFORM app.add_metrics(NEW.organization_id, NEW.employee_id, 0, 0, 0, NEW.amount);
        END IF;
        IF NEW.status = 'PENDING' THEN
            INSERT INTO public.pending_expenses AS p (organization_id, id, employee_id, amount, description, submitted_at)
            VALUES (NEW.organization_id, NEW.id, NEW.employee_id, NEW.amount, NEW.description, NEW.submitted_at)
            ON CONFLICT (organization_id, id) DO UPDATE
               SET employee_id = excluded.employee_id, amount = excluded.amount,
                   description = excluded.description, submitted_at = excluded.submitted_at, updated_at = excluded.updated_at;
        ELSE
            DELETE FROM public.pending_expenses p WHERE p.organization_id = NEW.organization_id AND p.id = NEW.id;
        END IF;
    END IF;
    RETURN NULL;
END
$function$
;

CREATE OR REPLACE FUNCTION app.organizations_redate()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
BEGIN
    -- (A session or expense written concurrently under the old zone may land on its old day until the
    -- next reconciliation.)
    DELETE FROM public.employee_daily_metrics d WHERE d.organization_id = NEW.id;
    INSERT INTO public.employee_daily_metrics AS d SELECT * FROM app.expected_employee_daily_metrics(NEW.id)
    ON CONFLICT (organization_id, employee_id, date) DO UPDATE
       SET sessions = excluded.sessions, distance_km = excluded.distance_km,
           duration_seconds = excluded.duration_seconds, expenses_count = excluded.expenses_count,
           expenses_amount = excluded.expenses_amount, updated_at = excluded.updated_at;
    RETURN NULL;
END
$function$
;

DROP FUNCTION app.measure_session(attendance_sessions, boolean);
CREATE FUNCTION app.measure_session(s record, keep boolean) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
    cfg      tracking_settings;
    r        record;
    km       double precision;
    duration integer;
    speed    double precision;
BEGIN
    IF s.checkout_at IS NOT NULL AND s.total_duration_seconds IS NULL THEN
        s.total_duration_seconds := round(extract(epoch FROM s.checkout_at - s.checkin_at))::integer;
    END IF;
    BEGIN
        cfg := app.tracking_settings_for(s.organization_id);
        r := app.session_distance(s.organization_id, s.id);
        km := round((r.distance_m / 1000)::numeric, 3)::double precision;
        IF s.checkout_at IS NOT NULL THEN
            duration := least(round(extract(epoch FROM s.checkout_at - s.checkin_at)),
                              cfg.max_session_hours * 3600)::integer;
        END IF;
        -- The speed in PL/pgSQL, not in the INSERT: Citus evaluates a VALUES expression's parts on the
        -- coordinator before the CASE around them, dividing by a zero duration.
        speed := CASE WHEN coalesce(duration, 0) > 0 THEN km / (duration / 3600.0) ELSE 0 END;
        IF keep THEN
            INSERT INTO session_summaries AS ss (organization_id, session_id, total_distance_km,
                                                 total_duration_seconds, avg_speed_kmh, points_total, points_used,
                                                 last_error, computed_at)
            VALUES (s.organization_id, s.id, km, coalesce(duration, 0),
                    speed,
                    r.points_total, r.points_used, NULL, now())
            ON CONFLICT (organization_id, session_id) DO UPDATE
               SET total_distance_km = excluded.total_distance_km,
                   total_duration_seconds = excluded.total_duration_seconds,
                   avg_speed_kmh = excluded.avg_speed_kmh,
                   points_total = excluded.points_total,
                   points_used = excluded.points_used,
                   last_error = NULL,
                   computed_at = excluded.computed_at;
        END IF;
        s.total_distance_km := km;
        s.total_duration_seconds := coalesce(duration, s.total_duration_seconds);
        s.distance_recalculation_status := 'done';
    EXCEPTION WHEN OTHERS THEN
        s.distance_recalculation_status := 'failed';
        IF keep THEN
            INSERT INTO session_summaries AS ss (organization_id, session_id, last_error, computed_at)
            VALUES (s.organization_id, s.id, SQLERRM, now())
            ON CONFLICT (organization_id, session_id) DO UPDATE SET last_error = excluded.last_error,
                                                                    computed_at = excluded.computed_at;
        END IF;
    END;
    RETURN s;
END
$$;
REVOKE ALL ON FUNCTION app.measure_session(record, boolean) FROM PUBLIC;
-- (as default privileges give it on Postgres; Citus sends grants, not default privileges, to its workers)
GRANT EXECUTE ON FUNCTION app.measure_session(record, boolean) TO fieldtrack_owner;

-- * Who is asking, as the functions that guard against requests see it: app.request_role() is the role
--   a request switched to (set_config('role', ...)), or 'none' outside a request, as
--   current_setting('role') was. On a Citus worker nothing is switched: there it is also the role the
--   coordinator's request switched to (app.request_role, sent on by app.citus_share_claims) and the login
--   (session_user) when that is one of ours, which can log in only on Citus (app.citus_distribute);
--   fieldtrack_api wherever any of them says so. Its five readers are unchanged but for it (and note_fix
--   reads its clock before its UPDATE, keeping the later of it and the row's: Citus takes no volatile
--   function in an UPDATE).
CREATE FUNCTION app.request_role() RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    -- plpgsql, not an inlined CASE: Citus takes no stable function inside a CASE in an UPDATE's WHERE.
    -- A request wherever any of the three says so: the role switched to, the role the coordinator's
    -- request switched to (app.citus_share_claims, Citus only), the login (on a worker, the role the
    -- coordinator connected as: fieldtrack_owner inside a definer function).
    IF 'fieldtrack_api' IN (coalesce(current_setting('role', true), ''),
                            coalesce(current_setting('app.request_role', true), ''), session_user) THEN
        RETURN 'fieldtrack_api';
    ELSIF coalesce(current_setting('role', true), 'none') <> 'none' THEN
        RETURN current_setting('role', true);
    ELSIF current_setting('app.request_role', true) IN ('fieldtrack_worker', 'fieldtrack_issuer') THEN
        RETURN current_setting('app.request_role', true);
    ELSIF session_user IN ('fieldtrack_worker', 'fieldtrack_issuer', 'fieldtrack_owner') THEN
        RETURN session_user;
    END IF;
    RETURN 'none';
END
$$;
GRANT EXECUTE ON FUNCTION app.request_role() TO fieldtrack_api, fieldtrack_worker, fieldtrack_issuer, fieldtrack_owner, fieldtrack_analyst;

CREATE OR REPLACE FUNCTION app.acts_for_employee(p_org uuid, p_employee uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'public', 'app'
AS $function$
        SELECT app.request_role() = 'none'
            OR (p_employee IS NOT NULL AND p_org IS NOT DISTINCT FROM app.org_id()
                AND p_employee IS NOT DISTINCT FROM app.employee_id())
    $function$;

CREATE OR REPLACE FUNCTION app.recalculate_session(p_org uuid, p_session uuid)
 RETURNS attendance_sessions
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
DECLARE
    s attendance_sessions;
BEGIN
    -- NO KEY UPDATE: serializes recalculations of the session without waiting for the KEY SHARE locks of
    -- concurrent GPS inserts (two late batches would otherwise deadlock).
    SELECT * INTO s FROM attendance_sessions WHERE organization_id = p_org AND id = p_session FOR NO KEY UPDATE;
    IF NOT FOUND OR (app.request_role() = 'fieldtrack_api' AND (
            app.org_id() IS DISTINCT FROM p_org
            OR (app.role() IS DISTINCT FROM 'ADMIN' AND s.employee_id IS DISTINCT FROM app.employee_id()))) THEN
        RAISE EXCEPTION 'Attendance session not found' USING ERRCODE = 'PT404', HINT = 'NOT_FOUND';
    END IF;
    s := app.measure_session(s, true);
    UPDATE attendance_sessions
       SET total_distance_km = s.total_distance_km,
           total_duration_seconds = s.total_duration_seconds,
           distance_recalculation_status = s.distance_recalculation_status
     WHERE organization_id = p_org AND id = p_session
    RETURNING * INTO s;
    RETURN s;
END
$function$;

CREATE OR REPLACE FUNCTION app.emit(p_org uuid, p_type text, p_data jsonb, p_stream_event text DEFAULT NULL::text, p_stream_payload jsonb DEFAULT NULL::jsonb)
 RETURNS uuid
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
BEGIN
    IF app.request_role() = 'fieldtrack_api'
        AND (pg_trigger_depth() = 0 OR p_org IS DISTINCT FROM app.org_id()) THEN
        RAISE EXCEPTION 'events are emitted by the changes that cause them' USING ERRCODE = '42501';
    END IF;
    RETURN app.append_event(p_org, p_type, p_data, p_stream_event, p_stream_payload);
END
$function$;

CREATE OR REPLACE FUNCTION app.note_fix(p_org uuid, p_employee uuid, p_lat double precision, p_lon double precision, p_at timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
DECLARE
    uploaded timestamptz := clock_timestamp(); -- not in the UPDATE: Citus takes no volatile function there
BEGIN
    UPDATE public.employee_last_state l
       SET last_upload_at = greatest(l.last_upload_at, uploaded), -- read before the row's lock: never back
           last_latitude = CASE WHEN l.last_location_at >= p_at THEN l.last_latitude ELSE p_lat END,
           last_longitude = CASE WHEN l.last_location_at >= p_at THEN l.last_longitude ELSE p_lon END,
           last_location_at = greatest(l.last_location_at, p_at)
     WHERE l.organization_id = p_org AND l.employee_id = p_employee
       -- a request may note its own employee's fixes only (the trigger runs in the inserter's name)
       AND (app.request_role() IS DISTINCT FROM 'fieldtrack_api'
            OR (p_org = app.org_id() AND p_employee = app.employee_id()));
END
$function$;

CREATE OR REPLACE FUNCTION app.emit_webhook_test(p_org uuid, p_webhook uuid)
 RETURNS uuid
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
BEGIN
    IF app.request_role() = 'fieldtrack_api'
        AND (p_org IS DISTINCT FROM app.org_id() OR app.role() IS DISTINCT FROM 'ADMIN') THEN
        RAISE EXCEPTION 'only an admin of the organization can test its webhooks' USING ERRCODE = '42501';
    END IF;
    RETURN app.append_event(p_org, 'webhook.test', jsonb_build_object('webhook_id', p_webhook, 'test', true,
                                                                      'message', 'FieldTrack test webhook delivery'),
                            NULL, NULL);
END
$function$;

-- * app.record_locations counts the fixes it stored from its INSERT's RETURNING: on Citus an INSERT ...
--   SELECT routed through the coordinator reports the rows it sent, duplicates included.
CREATE OR REPLACE FUNCTION app.record_locations(p_org uuid, p_session uuid, p_latitude double precision[], p_longitude double precision[], p_accuracy double precision[], p_recorded_at timestamp with time zone[], p_sequence integer[])
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'public', 'app'
AS $function$
DECLARE
    s        attendance_sessions;
    inserted integer;
BEGIN
    s := app.locations_session(p_org, p_session, (SELECT min(t) FROM unnest(p_recorded_at) AS t),
                               (SELECT max(t) FROM unnest(p_recorded_at) AS t), cardinality(p_recorded_at) > 1);
    WITH stored AS (
        INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id,
                                   latitude, longitude, accuracy, sequence_number)
        SELECT s.organization_id, s.id, u.at, s.employee_id, u.lat, u.lon, u.acc, u.seq
          FROM unnest(p_recorded_at, p_latitude, p_longitude, p_accuracy, p_sequence) AS u(at, lat, lon, acc, seq)
        ON CONFLICT DO NOTHING
        RETURNING 1)
    SELECT count(*) INTO inserted FROM stored;
    RETURN inserted;
END
$function$;

-- * app.receipt_upload's upload time is a variable's: Citus takes no stable function inside a CASE of an
--   UPDATE.
CREATE OR REPLACE FUNCTION app.receipt_upload(p_id uuid, p_expires bigint, p_signature text, p_from text, p_to text, p_size bigint DEFAULT NULL::bigint, p_sha256 text DEFAULT NULL::text)
 RETURNS receipts
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
DECLARE
    r receipts;
    uploading_ended timestamptz := now(); -- a value, not now() in the UPDATE's CASE
BEGIN
    IF (p_from, p_to) NOT IN (('pending', 'uploading'), ('uploading', 'uploaded'), ('uploading', 'pending')) THEN
        RAISE EXCEPTION 'no upload step from % to %', p_from, p_to USING ERRCODE = '22023';
    END IF;
    -- Digests compared, not the signatures: the comparison takes the same time wherever they differ.
    IF digest(coalesce(p_signature, ''), 'sha256') IS DISTINCT FROM digest(app.receipt_signature(p_id, p_expires), 'sha256') THEN
        RAISE EXCEPTION 'The upload URL is not valid.' USING ERRCODE = 'PT403', HINT = 'INVALID_UPLOAD_URL';
    END IF;
    IF to_timestamp(p_expires) <= now() THEN
        RAISE EXCEPTION 'The upload URL has expired.' USING ERRCODE = 'PT410', HINT = 'UPLOAD_URL_EXPIRED';
    END IF;
    UPDATE receipts
       SET status = p_to,
           size_bytes = coalesce(p_size, size_bytes), sha256 = coalesce(p_sha256, sha256),
           uploaded_at = CASE WHEN p_to = 'uploaded' THEN uploading_ended ELSE uploaded_at END
     WHERE id = p_id AND status = p_from AND expires_at = to_timestamp(p_expires)
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'The upload URL has already been used.' USING ERRCODE = 'PT409', HINT = 'UPLOAD_URL_USED';
    END IF;
    RETURN r;
END
$function$;
