-- 000030 the SQL-language functions that read tables, as PL/pgSQL: Citus (issue 15) cannot plan a query on
-- a distributed or reference table that uses an SQL function's parameters ("could not create distributed
-- plan"), and PL/pgSQL hands it its parameters as values. Each body is the one it had, run the way an
-- SQL function runs it: the first row of its query, or all of them for a set, cast to the declared row type
-- as SQL functions do (RETURN QUERY would not); names resolve to columns
-- before parameters, as in SQL functions (#variable_conflict use_column). None of them was inlined into
-- its callers on Postgres (definer functions, SET search_path, or a scalar query with FROM), so no plan
-- changes. Grants and owners are kept (CREATE OR REPLACE).
-- Locks: none beyond replacing functions.

CREATE OR REPLACE FUNCTION app.auth_account_by_email(p_email text, OUT organization_id uuid, OUT user_id uuid, OUT email text, OUT role text, OUT password_hash text, OUT disabled boolean, OUT employee_id uuid, OUT employee_active boolean, OUT created_at timestamp with time zone, OUT last_sign_in_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    SELECT * INTO organization_id, user_id, email, role, password_hash, disabled, employee_id, employee_active, created_at, last_sign_in_at FROM (
SELECT a.* FROM users u, app.auth_account_of(u.organization_id, u.id) a
         WHERE lower(u.email) = lower(p_email)
    ) AS x LIMIT 1;
END
$function$;

CREATE OR REPLACE FUNCTION app.auth_account_of(p_org uuid, p_user uuid, OUT organization_id uuid, OUT user_id uuid, OUT email text, OUT role text, OUT password_hash text, OUT disabled boolean, OUT employee_id uuid, OUT employee_active boolean, OUT created_at timestamp with time zone, OUT last_sign_in_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    SELECT * INTO organization_id, user_id, email, role, password_hash, disabled, employee_id, employee_active, created_at, last_sign_in_at FROM (
SELECT u.organization_id, u.id, u.email, u.role, p.password_hash, u.disabled_at IS NOT NULL,
               e.id, coalesce(e.is_active, false), u.created_at, u.last_sign_in_at
          FROM users u
          LEFT JOIN app.user_passwords p ON p.organization_id = u.organization_id AND p.user_id = u.id
          LEFT JOIN employees e ON e.organization_id = u.organization_id AND e.user_id = u.id
         WHERE u.organization_id = p_org AND u.id = p_user
    ) AS x LIMIT 1;
END
$function$;

CREATE OR REPLACE FUNCTION app.expected_employee_daily_metrics(p_org uuid)
 RETURNS SETOF employee_daily_metrics
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
SELECT (r).* FROM (SELECT x::employee_daily_metrics AS r FROM (
WITH tz AS (SELECT o.time_zone FROM public.organizations o WHERE o.id = p_org),
        parts AS (
            SELECT a.employee_id, (a.checkin_at AT TIME ZONE tz.time_zone)::date AS date, 1 AS sessions,
                   CASE WHEN a.checkout_at IS NOT NULL THEN coalesce(a.total_distance_km::numeric(14,3), 0) ELSE 0 END AS km,
                   CASE WHEN a.checkout_at IS NOT NULL THEN coalesce(a.total_duration_seconds, 0) ELSE 0 END AS seconds,
                   0 AS expenses, 0::numeric AS amount
              FROM public.attendance_sessions a, tz WHERE a.organization_id = p_org
            UNION ALL
            SELECT x.employee_id, (x.submitted_at AT TIME ZONE tz.time_zone)::date, 0, 0, 0, 1, x.amount
              FROM public.expenses x, tz WHERE x.organization_id = p_org
        )
        SELECT p_org, employee_id, date, sum(sessions)::integer, sum(km)::numeric(14,3), sum(seconds)::bigint,
               sum(expenses)::integer, sum(amount)::numeric(14,2), now()
          FROM parts GROUP BY employee_id, date
    ) AS x OFFSET 0) AS c; -- the cast once a row (OFFSET 0), then its fields
END
$function$;

CREATE OR REPLACE FUNCTION app.expected_pending_expenses(p_org uuid)
 RETURNS SETOF pending_expenses
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
SELECT (r).* FROM (SELECT x::pending_expenses AS r FROM (
SELECT x.organization_id, x.id, x.employee_id, x.amount, x.description, x.submitted_at, now()
          FROM public.expenses x WHERE x.organization_id = p_org AND x.status = 'PENDING'
    ) AS x OFFSET 0) AS c; -- the cast once a row (OFFSET 0), then its fields
END
$function$;

CREATE OR REPLACE FUNCTION public.reconcile_snapshot_tables(dry_run boolean DEFAULT false, org uuid DEFAULT NULL::uuid)
 RETURNS TABLE(table_name text, rows_checked bigint, rows_inserted bigint, rows_updated bigint, rows_deleted bigint, organizations_drifted bigint)
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
SELECT r.table_name, sum(r.rows_checked)::bigint, sum(r.rows_inserted)::bigint, sum(r.rows_updated)::bigint,
               sum(r.rows_deleted)::bigint,
               count(*) FILTER (WHERE r.rows_inserted + r.rows_updated + r.rows_deleted > 0)
          FROM public.organizations o
          CROSS JOIN LATERAL app.reconcile_org(o.id, dry_run) r
         WHERE org IS NULL OR o.id = org
         GROUP BY r.table_name
         ORDER BY r.table_name;
END
$function$;

CREATE OR REPLACE FUNCTION app.tracking_settings_for(p_org uuid)
 RETURNS tracking_settings
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    result tracking_settings;
BEGIN
    -- Column by column (SELECT t.* INTO), not the whole row: on a Citus worker the row read is a shard's,
    -- of another type than tracking_settings.
    SELECT t.* INTO result FROM tracking_settings t WHERE t.organization_id = p_org;
    IF NOT FOUND THEN
        result := app.tracking_settings_defaults(p_org);
    END IF;
    RETURN result;
END
$function$;

CREATE OR REPLACE FUNCTION app.simplified_route(p_org uuid, p_session uuid, p_tolerance_m double precision)
 RETURNS SETOF gps_locations
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'public', 'app'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
SELECT (r).* FROM (SELECT x::gps_locations AS r FROM (
WITH pts AS (
            SELECT g, row_number() OVER (ORDER BY g.recorded_at) AS ord,
                   ST_Transform(ST_SetSRID(ST_MakePoint(g.longitude, g.latitude), 4326), 3857) AS p
              FROM gps_locations g
             WHERE g.organization_id = p_org AND g.session_id = p_session
        ), line AS (
            SELECT ST_Simplify(ST_MakeLine(ST_MakePointM(ST_X(p), ST_Y(p), ord) ORDER BY ord),
                               p_tolerance_m / greatest(cos(radians(avg((g).latitude))), 0.01)) AS geom
              FROM pts
            HAVING count(*) > 1
        ), kept AS (
            SELECT ST_M(d.geom)::bigint AS ord FROM line, ST_DumpPoints(line.geom) AS d
        )
        SELECT (pts.g).*
          FROM pts
         WHERE pts.ord IN (SELECT ord FROM kept) OR NOT EXISTS (SELECT FROM line)
         ORDER BY pts.ord
    ) AS x OFFSET 0) AS c; -- the cast once a row (OFFSET 0), then its fields
END
$function$;

CREATE OR REPLACE FUNCTION app.touch_employee(p_org uuid, p_employee uuid, p_at timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
UPDATE employees SET last_activity_at = p_at
         WHERE organization_id = p_org AND id = p_employee AND is_active
           AND (last_activity_at IS NULL OR last_activity_at < p_at);
END
$function$;

CREATE OR REPLACE FUNCTION app.org_date(p_org uuid, p_at timestamp with time zone)
 RETURNS date
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    result date;
BEGIN
    SELECT * INTO result FROM (
SELECT (p_at AT TIME ZONE o.time_zone)::date FROM public.organizations o WHERE o.id = p_org
    ) AS x LIMIT 1;
    RETURN result;
END
$function$;

CREATE OR REPLACE FUNCTION app.expected_employee_last_state(p_org uuid)
 RETURNS SETOF employee_last_state
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
SELECT (r).* FROM (SELECT x::employee_last_state AS r FROM (
SELECT e.organization_id, e.id, s.id, coalesce(s.id IS NOT NULL AND s.checkout_at IS NULL, false),
               s.checkin_at, c.checkout_at, g.latitude, g.longitude, g.recorded_at, NULL::timestamptz, now()
          FROM public.employees e
          LEFT JOIN LATERAL (
              SELECT a.id, a.checkin_at, a.checkout_at FROM public.attendance_sessions a
               WHERE a.organization_id = e.organization_id AND a.employee_id = e.id
               ORDER BY a.checkin_at DESC, a.id DESC LIMIT 1) s ON true
          LEFT JOIN LATERAL (
              SELECT a.checkout_at FROM public.attendance_sessions a
               WHERE a.organization_id = e.organization_id AND a.employee_id = e.id AND a.checkout_at IS NOT NULL
               ORDER BY a.checkin_at DESC, a.id DESC LIMIT 1) c ON true
          -- The newest fix of all its sessions (one probe of each session's newest).
          LEFT JOIN LATERAL (
              SELECT f.latitude, f.longitude, f.recorded_at
                FROM public.attendance_sessions a
                CROSS JOIN LATERAL (
                    SELECT p.latitude, p.longitude, p.recorded_at FROM public.gps_locations p
                     WHERE p.organization_id = a.organization_id AND p.session_id = a.id
                     ORDER BY p.recorded_at DESC LIMIT 1) f
               WHERE a.organization_id = e.organization_id AND a.employee_id = e.id
               ORDER BY f.recorded_at DESC LIMIT 1) g ON true
         WHERE e.organization_id = p_org
    ) AS x OFFSET 0) AS c; -- the cast once a row (OFFSET 0), then its fields
END
$function$;

CREATE OR REPLACE FUNCTION app.expected_employee_latest_sessions(p_org uuid)
 RETURNS SETOF employee_latest_sessions
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
SELECT (r).* FROM (SELECT x::employee_latest_sessions AS r FROM (
SELECT e.organization_id, e.id, s.id, s.checkin_at, s.checkout_at, s.total_distance_km,
               s.total_duration_seconds, s.distance_recalculation_status, s.updated_at, now()
          FROM public.employees e
          CROSS JOIN LATERAL (
              SELECT a.* FROM public.attendance_sessions a
               WHERE a.organization_id = e.organization_id AND a.employee_id = e.id
               ORDER BY a.checkin_at DESC, a.id DESC LIMIT 1) s
         WHERE e.organization_id = p_org
    ) AS x OFFSET 0) AS c; -- the cast once a row (OFFSET 0), then its fields
END
$function$;

CREATE OR REPLACE FUNCTION app.expected_employee_metrics_snapshot(p_org uuid)
 RETURNS SETOF employee_metrics_snapshot
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
SELECT (r).* FROM (SELECT x::employee_metrics_snapshot AS r FROM (
SELECT e.organization_id, e.id, coalesce(s.n, 0)::integer, coalesce(s.seconds, 0)::bigint, NULL::numeric,
               coalesce(s.km, 0)::numeric(14,3), coalesce(x.approved, 0)::numeric(14,2),
               greatest(l.last_check_in_at, l.last_check_out_at), now()
          FROM public.employees e
          JOIN app.expected_employee_last_state(p_org) l ON l.employee_id = e.id
          LEFT JOIN (
              SELECT a.employee_id, count(*) AS n,
                     sum(a.total_duration_seconds) FILTER (WHERE a.checkout_at IS NOT NULL) AS seconds,
                     sum(a.total_distance_km::numeric(14,3)) FILTER (WHERE a.checkout_at IS NOT NULL) AS km
                FROM public.attendance_sessions a WHERE a.organization_id = p_org GROUP BY a.employee_id) s
            ON s.employee_id = e.id
          LEFT JOIN (
              SELECT x.employee_id, sum(x.amount) AS approved
                FROM public.expenses x WHERE x.organization_id = p_org AND x.status = 'APPROVED'
               GROUP BY x.employee_id) x
            ON x.employee_id = e.id
         WHERE e.organization_id = p_org
    ) AS x OFFSET 0) AS c; -- the cast once a row (OFFSET 0), then its fields
END
$function$;

CREATE OR REPLACE FUNCTION app.end_sessions(p_org uuid, p_user uuid, p_reason text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
UPDATE app.auth_sessions SET revoked_at = now(), revoked_reason = p_reason
         WHERE organization_id = p_org AND user_id = p_user AND revoked_at IS NULL;
END
$function$;

CREATE OR REPLACE FUNCTION app.api_key_lookup(p_hash bytea)
 RETURNS TABLE(id uuid, organization_id uuid, scopes text[])
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
SELECT k.id, k.organization_id, k.scopes FROM public.api_keys k
         WHERE k.key_hash = p_hash AND k.active;
END
$function$;

CREATE OR REPLACE FUNCTION app.add_metrics(p_org uuid, p_employee uuid, p_sessions integer, p_seconds bigint, p_km numeric, p_approved numeric)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
UPDATE public.employee_metrics_snapshot m
           SET total_sessions = m.total_sessions + p_sessions,
               total_duration_seconds = m.total_duration_seconds + p_seconds,
               total_distance = m.total_distance + p_km, total_expenses = m.total_expenses + p_approved,
               updated_at = now()
         WHERE m.organization_id = p_org AND m.employee_id = p_employee
           AND (p_sessions, p_seconds, p_km, p_approved) IS DISTINCT FROM (0, 0::bigint, 0::numeric, 0::numeric);
END
$function$;

CREATE OR REPLACE FUNCTION app.api_key_usage(p_orgs uuid[], p_ids uuid[], p_requests bigint[], p_errors bigint[], p_last timestamp with time zone[])
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'app', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
UPDATE public.api_keys k
           SET request_count = k.request_count + u.requests,
               error_count   = k.error_count + u.errors,
               last_used_at  = greatest(k.last_used_at, u.last)
          FROM unnest(p_orgs, p_ids, p_requests, p_errors, p_last) AS u (org, id, requests, errors, last)
         WHERE k.organization_id = u.org AND k.id = u.id;
END
$function$;
