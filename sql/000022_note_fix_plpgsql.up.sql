-- 000022 app.note_fix in PL/pgSQL: the same statement, planned once per connection instead of per call.
--
-- Why: the fixes' trigger (000014) calls app.note_fix once per insert statement. As a LANGUAGE sql
-- function with SECURITY DEFINER and SET search_path it cannot be inlined, and Postgres 15 keeps a SQL
-- function's plan only for the statement that calls it: its UPDATE was parsed and planned on every call.
-- Measured on a scratch cluster (the backend's CPU, minimum of 5 runs of 2,000 transactions; issue 14):
-- note_fix took 150-230 us a call, its UPDATE 27-36 us of it; a single-row insert (as make bench's raw
-- phase sends it) cost 415 us, 225 us with this function; a single fix as the API sends it 615 -> 455 us.
-- PL/pgSQL caches the UPDATE's plan for the connection. The statement, its conditions (a request notes its
-- own employee's fixes only), SECURITY DEFINER, the search_path and the grants are unchanged.
-- Locks: replaces one function (a brief lock on its pg_proc row); no table is touched.
CREATE OR REPLACE FUNCTION app.note_fix(p_org uuid, p_employee uuid, p_lat double precision, p_lon double precision,
                                        p_at timestamptz) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
BEGIN
    UPDATE public.employee_last_state l
       SET last_upload_at = clock_timestamp(),
           last_latitude = CASE WHEN l.last_location_at >= p_at THEN l.last_latitude ELSE p_lat END,
           last_longitude = CASE WHEN l.last_location_at >= p_at THEN l.last_longitude ELSE p_lon END,
           last_location_at = greatest(l.last_location_at, p_at)
     WHERE l.organization_id = p_org AND l.employee_id = p_employee
       -- a request may note its own employee's fixes only (the trigger runs in the inserter's name)
       AND (current_setting('role', true) IS DISTINCT FROM 'fieldtrack_api'
            OR (p_org = app.org_id() AND p_employee = app.employee_id()));
END
$$;
