-- 000022 reversed: app.note_fix as the SQL function 000014 made it.
CREATE OR REPLACE FUNCTION app.note_fix(p_org uuid, p_employee uuid, p_lat double precision, p_lon double precision,
                                        p_at timestamptz) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
        UPDATE public.employee_last_state l
           SET last_upload_at = clock_timestamp(),
               last_latitude = CASE WHEN l.last_location_at >= p_at THEN l.last_latitude ELSE p_lat END,
               last_longitude = CASE WHEN l.last_location_at >= p_at THEN l.last_longitude ELSE p_lon END,
               last_location_at = greatest(l.last_location_at, p_at)
         WHERE l.organization_id = p_org AND l.employee_id = p_employee
           -- a request may note its own employee's fixes only (the trigger runs in the inserter's name)
           AND (current_setting('role', true) IS DISTINCT FROM 'fieldtrack_api'
                OR (p_org = app.org_id() AND p_employee = app.employee_id()))
    $$;
