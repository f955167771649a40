-- 000006 GPS and distance: the fixes phones upload, and the one distance function every path uses.
--
-- Why in Postgres: every writer (API, SQL console, a future service) gets the same distance, computed in the
-- transaction that changed its inputs, so a late or repeated upload can never leave a stale total behind.
-- * A fix is identified by (session, recorded_at): the table's primary key, and its only index, so a fix
--   uploaded twice is stored once and ingest stays cheap.
-- * app.record_location(s) is the ingest path: the caller's own session, checked once per call.
-- * app.measure_session computes a session's distance and duration (app.session_distance does the
--   cleaning); the check-out's trigger (attendance file), late fixes, recalculation and replays all use it.
-- * Late fixes (offline buffers uploaded after the check-out) recalculate their session in the same
--   statement: a statement-level trigger, so ingest pays one trigger call per batch, not per fix.
-- Locks: creates objects only.

CREATE TABLE gps_locations (
    organization_id uuid             NOT NULL,
    session_id      uuid             NOT NULL,
    recorded_at     timestamptz      NOT NULL,
    id              uuid             NOT NULL DEFAULT gen_random_uuid(),
    employee_id     uuid             NOT NULL,
    latitude        double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude       double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    accuracy        double precision CHECK (accuracy >= 0),
    sequence_number integer          CHECK (sequence_number >= 0),
    created_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, session_id, recorded_at),
    CONSTRAINT gps_locations_session_fkey FOREIGN KEY (organization_id, employee_id, session_id)
        REFERENCES attendance_sessions (organization_id, employee_id, id) ON DELETE CASCADE
);

-- Thresholds of the GPS cleaning, per organization. Organizations without a row use the defaults below.
CREATE TABLE tracking_settings (
    organization_id   uuid             PRIMARY KEY REFERENCES organizations ON DELETE CASCADE,
    -- fixes whose reported accuracy (metres) is worse than this are ignored
    max_accuracy_m    double precision NOT NULL DEFAULT 100 CHECK (max_accuracy_m > 0),
    -- a fix implying a faster move from the last accepted fix is a glitch (70 m/s is about 250 km/h)
    max_speed_mps     double precision NOT NULL DEFAULT 70 CHECK (max_speed_mps > 0),
    -- moves shorter than max(this, the fixes' accuracy) are jitter, not movement
    jitter_floor_m    double precision NOT NULL DEFAULT 5 CHECK (jitter_floor_m >= 0),
    -- fixes that stay within this radius for stay_min_seconds are one stay, collapsed to one point
    stay_radius_m     double precision NOT NULL DEFAULT 50 CHECK (stay_radius_m > 0),
    stay_min_seconds  integer          NOT NULL DEFAULT 120 CHECK (stay_min_seconds > 0),
    -- a session's duration is capped at this many hours (a forgotten check-out is not a 9-day shift)
    max_session_hours integer          NOT NULL DEFAULT 168 CHECK (max_session_hours > 0),
    updated_at        timestamptz      NOT NULL DEFAULT now()
);

CREATE TRIGGER tracking_settings_updated_at BEFORE UPDATE ON tracking_settings
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

-- The settings in force for an organization: its row, or the column defaults.
CREATE FUNCTION app.tracking_settings_for(p_org uuid) RETURNS tracking_settings
    LANGUAGE sql STABLE
    AS $$
        SELECT s FROM (
            SELECT t AS s, 0 AS pref FROM tracking_settings t WHERE t.organization_id = p_org
            UNION ALL
            SELECT ROW(p_org, 100, 70, 5, 50, 120, 168, now())::tracking_settings, 1
        ) x ORDER BY pref LIMIT 1
    $$;

-- One row per session whose distance was computed: the result, how many fixes were used, and the last error.
CREATE TABLE session_summaries (
    organization_id        uuid             NOT NULL,
    session_id             uuid             NOT NULL,
    total_distance_km      double precision NOT NULL DEFAULT 0,
    total_duration_seconds integer          NOT NULL DEFAULT 0,
    avg_speed_kmh          double precision NOT NULL DEFAULT 0,
    points_total           integer          NOT NULL DEFAULT 0,
    points_used            integer          NOT NULL DEFAULT 0,
    last_error             text,
    computed_at            timestamptz      NOT NULL DEFAULT now(),
    created_at             timestamptz      NOT NULL DEFAULT now(),
    updated_at             timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, session_id),
    CONSTRAINT session_summaries_session_fkey FOREIGN KEY (organization_id, session_id)
        REFERENCES attendance_sessions (organization_id, id) ON DELETE CASCADE
);

CREATE TRIGGER session_summaries_updated_at BEFORE UPDATE ON session_summaries
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

-- Great-circle distance in metres (mean Earth radius). Used for the cleaning thresholds only; the reported
-- length is PostGIS's geodesic length on the WGS84 spheroid.
CREATE FUNCTION app.haversine_m(lat1 double precision, lon1 double precision,
                                lat2 double precision, lon2 double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$
        SELECT 2 * 6371008.8 * asin(least(1, sqrt(
            sin(radians(lat2 - lat1) / 2) ^ 2
            + cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2)))
    $$;

-- app.session_distance: the distance of a session's fixes, in recorded_at order, after cleaning.
--   1. Fixes with accuracy worse than max_accuracy_m are dropped.
--   2. Stays: consecutive fixes within max(stay_radius_m, 3 x accuracy) of their running centroid for at
--      least stay_min_seconds collapse to the centroid. Up to three stray fixes in a row inside a stay are
--      tolerated. A still phone's scatter therefore adds nothing, however long it lies on the desk.
--   3. Glitches: a fix implying a speed above max_speed_mps from the last accepted fix is dropped; after
--      five in a row the track restarts there without bridging the gap.
--   4. Jitter: a constant-position Kalman filter (measurement variance = accuracy^2, process noise 3 m/s)
--      smooths the remaining fixes, and a move shorter than max(jitter_floor_m, 2 x the combined estimate
--      uncertainty) does not advance the track. Slow real movement still accumulates, because the next
--      estimate is measured from the same kept point.
--   5. The kept points form line segments; the result is their geodesic length (PostGIS geography).
-- It reads only; it returns 0 for fewer than two usable fixes.
CREATE FUNCTION app.session_distance(p_org uuid, p_session uuid,
                                     OUT distance_m double precision,
                                     OUT points_total integer,
                                     OUT points_used integer)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    q2         constant double precision := 9;  -- process noise (3 m/s) squared
    cfg        tracking_settings;
    lat        double precision[];
    lon        double precision[];
    acc        double precision[];
    ts         double precision[];
    n          integer;
    -- stay detection
    i          integer := 1;
    k          integer;
    last_in    integer;
    outliers   integer;
    cnt        integer;
    c_lat      double precision;
    c_lon      double precision;
    radius     double precision;
    -- the path after stays: points with accuracy and the time span they cover
    p_lat      double precision[] := '{}';
    p_lon      double precision[] := '{}';
    p_acc      double precision[] := '{}';
    p_t0       double precision[] := '{}';
    p_t1       double precision[] := '{}';
    m          integer;
    -- glitch filter
    ref        integer := 1;
    glitches   integer := 0;
    seg        integer := 1;
    -- Kalman estimate and the kept point
    e_lat      double precision;
    e_lon      double precision;
    e_var      double precision;
    gain       double precision;
    kept_lat   double precision;
    kept_lon   double precision;
    kept_var   double precision;
    k_lat      double precision[] := '{}';
    k_lon      double precision[] := '{}';
    k_seg      integer[] := '{}';
BEGIN
    cfg := app.tracking_settings_for(p_org);
    SELECT count(*)::integer,
           array_agg(g.latitude ORDER BY g.recorded_at) FILTER (WHERE coalesce(g.accuracy, 0) <= cfg.max_accuracy_m),
           array_agg(g.longitude ORDER BY g.recorded_at) FILTER (WHERE coalesce(g.accuracy, 0) <= cfg.max_accuracy_m),
           array_agg(coalesce(g.accuracy, 0) ORDER BY g.recorded_at) FILTER (WHERE coalesce(g.accuracy, 0) <= cfg.max_accuracy_m),
           array_agg(extract(epoch FROM g.recorded_at)::double precision ORDER BY g.recorded_at)
               FILTER (WHERE coalesce(g.accuracy, 0) <= cfg.max_accuracy_m)
      INTO points_total, lat, lon, acc, ts
      FROM gps_locations g
     WHERE g.organization_id = p_org AND g.session_id = p_session;

    distance_m := 0;
    n := coalesce(array_length(lat, 1), 0);
    IF n < 2 THEN
        points_used := n;
        RETURN;
    END IF;

    -- 2. stays. A window that does not become a stay is emitted point by point and the scan resumes after
    -- it, which keeps the pass linear in the number of fixes.
    WHILE i <= n LOOP
        c_lat := lat[i]; c_lon := lon[i]; cnt := 1; last_in := i; outliers := 0;
        radius := greatest(cfg.stay_radius_m, 3 * acc[i]);
        k := i + 1;
        WHILE k <= n LOOP
            IF app.haversine_m(c_lat, c_lon, lat[k], lon[k]) <= radius THEN
                cnt := cnt + 1;
                c_lat := c_lat + (lat[k] - c_lat) / cnt;
                c_lon := c_lon + (lon[k] - c_lon) / cnt;
                last_in := k;
                outliers := 0;
            ELSE
                outliers := outliers + 1;
                EXIT WHEN outliers > 3;
            END IF;
            k := k + 1;
        END LOOP;
        IF ts[last_in] - ts[i] >= cfg.stay_min_seconds THEN
            p_lat := p_lat || c_lat; p_lon := p_lon || c_lon;
            p_acc := p_acc || (greatest(acc[i], 1) / sqrt(cnt));
            p_t0 := p_t0 || ts[i]; p_t1 := p_t1 || ts[last_in];
        ELSE
            FOR k IN i .. last_in LOOP
                p_lat := p_lat || lat[k]; p_lon := p_lon || lon[k]; p_acc := p_acc || acc[k];
                p_t0 := p_t0 || ts[k]; p_t1 := p_t1 || ts[k];
            END LOOP;
        END IF;
        i := last_in + 1;
    END LOOP;

    -- 3 and 4. glitches, smoothing, jitter
    m := array_length(p_lat, 1);
    e_lat := p_lat[1]; e_lon := p_lon[1]; e_var := greatest(p_acc[1], 1) ^ 2;
    kept_lat := e_lat; kept_lon := e_lon; kept_var := e_var;
    k_lat := ARRAY[e_lat]; k_lon := ARRAY[e_lon]; k_seg := ARRAY[seg];
    FOR k IN 2 .. m LOOP
        IF app.haversine_m(p_lat[ref], p_lon[ref], p_lat[k], p_lon[k])
           > cfg.max_speed_mps * greatest(p_t0[k] - p_t1[ref], 1) THEN
            glitches := glitches + 1;
            CONTINUE WHEN glitches < 5;
            -- Five impossible fixes in a row: the reference was the outlier. Restart the track here.
            seg := seg + 1;
            e_lat := p_lat[k]; e_lon := p_lon[k]; e_var := greatest(p_acc[k], 1) ^ 2;
            kept_lat := e_lat; kept_lon := e_lon; kept_var := e_var;
            k_lat := k_lat || e_lat; k_lon := k_lon || e_lon; k_seg := k_seg || seg;
            ref := k; glitches := 0;
            CONTINUE;
        END IF;
        e_var := e_var + greatest(p_t0[k] - p_t1[ref], 0) * q2;
        gain := e_var / (e_var + greatest(p_acc[k], 1) ^ 2);
        e_lat := e_lat + gain * (p_lat[k] - e_lat);
        e_lon := e_lon + gain * (p_lon[k] - e_lon);
        e_var := (1 - gain) * e_var;
        ref := k; glitches := 0;
        CONTINUE WHEN app.haversine_m(kept_lat, kept_lon, e_lat, e_lon)
                      < greatest(cfg.jitter_floor_m, 2 * sqrt(kept_var + e_var));
        kept_lat := e_lat; kept_lon := e_lon; kept_var := e_var;
        k_lat := k_lat || e_lat; k_lon := k_lon || e_lon; k_seg := k_seg || seg;
    END LOOP;

    -- 5. geodesic length of each segment
    points_used := array_length(k_lat, 1);
    SELECT coalesce(sum(len), 0) INTO distance_m
      FROM (SELECT ST_Length(ST_MakeLine(ST_SetSRID(ST_MakePoint(x, y), 4326) ORDER BY ord)::geography) AS len
              FROM unnest(k_lon, k_lat, k_seg) WITH ORDINALITY AS u(x, y, s, ord)
             GROUP BY s
            HAVING count(*) > 1) segs;
END
$$;


-- app.measure_session: s with its distance (km, three decimals), its duration once closed (check-out minus
-- check-in, capped at the organization's max_session_hours) and status done; with keep, the figures are
-- kept in session_summaries. A computation that fails leaves the distance as it was, marks s failed (a
-- check-out keeps its uncapped duration) and keeps the error in session_summaries, to be replayed: it
-- never fails the write that asked for it. It writes no session: callers store what it returns. Its only
-- callers are the owner's (the session's own triggers, app.recalculate_session), which run as the owner:
-- the row it is given is trusted, so nobody else may call it (no grant).
CREATE FUNCTION app.measure_session(s attendance_sessions, keep boolean) RETURNS attendance_sessions
    LANGUAGE plpgsql
    AS $$
DECLARE
    cfg      tracking_settings;
    r        record;
    km       double precision;
    duration integer;
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
        IF keep THEN
            INSERT INTO session_summaries AS ss (organization_id, session_id, total_distance_km,
                                                 total_duration_seconds, avg_speed_kmh, points_total, points_used,
                                                 last_error, computed_at)
            VALUES (s.organization_id, s.id, km, coalesce(duration, 0),
                    CASE WHEN coalesce(duration, 0) > 0 THEN km / (duration / 3600.0) ELSE 0 END,
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
REVOKE ALL ON FUNCTION app.measure_session(attendance_sessions, boolean) FROM PUBLIC;

-- app.recalculate_session: measure a session again now and store the result; returns the session. Runs as
-- the owner (employees may not write these columns), so for the API role it applies the session policy
-- itself: another organization's session, or another employee's for an employee, is not found (PT404).
CREATE FUNCTION app.recalculate_session(p_org uuid, p_session uuid) RETURNS attendance_sessions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    s attendance_sessions;
BEGIN
    -- NO KEY UPDATE: serializes recalculations of the session without waiting for the KEY SHARE locks of
    -- concurrent GPS inserts (two late batches would otherwise deadlock).
    SELECT * INTO s FROM attendance_sessions WHERE organization_id = p_org AND id = p_session FOR NO KEY UPDATE;
    IF NOT FOUND OR (current_setting('role', true) = 'fieldtrack_api' AND (
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
$$;
REVOKE ALL ON FUNCTION app.recalculate_session(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.recalculate_session(uuid, uuid) TO fieldtrack_api;

-- app.replay_failed_distances: recalculate up to p_limit of an organization's sessions whose last
-- computation failed, longest-failed first; returns how many ran. Runs as the caller, so it replays only
-- sessions the caller can see.
CREATE FUNCTION app.replay_failed_distances(p_org uuid, p_limit integer) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    s record;
    n integer := 0;
BEGIN
    FOR s IN SELECT id FROM attendance_sessions
              WHERE organization_id = p_org AND distance_recalculation_status = 'failed'
              ORDER BY updated_at LIMIT p_limit LOOP
        PERFORM app.recalculate_session(p_org, s.id);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Fixes that arrive after the check-out (offline buffers) recalculate their session in the same statement.
CREATE FUNCTION app.gps_locations_after_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    s record;
BEGIN
    -- Distinct sessions first, then one primary-key probe each: a join would be planned once for a
    -- one-row insert and then scan the organization's sessions for every fix of a batch.
    FOR s IN SELECT DISTINCT n.organization_id, n.session_id FROM new_points n LOOP
        IF EXISTS (SELECT FROM attendance_sessions a
                    WHERE a.organization_id = s.organization_id AND a.id = s.session_id
                      AND a.checkout_at IS NOT NULL) THEN
            PERFORM app.recalculate_session(s.organization_id, s.session_id);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER gps_locations_after_insert AFTER INSERT ON gps_locations
    REFERENCING NEW TABLE AS new_points
    FOR EACH STATEMENT EXECUTE FUNCTION app.gps_locations_after_insert();

-- app.locations_session: the caller's own session (visible through row-level security) that fixes
-- recorded between p_first and p_last may be added to, or the original API's 400 explaining why not.
-- It and app.record_location run as the caller, on the ingest hot path: no pinned search_path, whose
-- save and restore on every call would cost more than it protects for a function without privileges.
CREATE FUNCTION app.locations_session(p_org uuid, p_session uuid, p_first timestamptz, p_last timestamptz,
                                      p_plural boolean) RETURNS attendance_sessions
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    s attendance_sessions;
BEGIN
    SELECT * INTO s FROM attendance_sessions
     WHERE organization_id = p_org AND id = p_session AND employee_id = app.employee_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Cannot record %: invalid or closed attendance session.',
            CASE WHEN p_plural THEN 'locations' ELSE 'location' END
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF p_last > now() + interval '2 minutes' THEN
        RAISE EXCEPTION 'recorded_at cannot be more than 2 minutes in the future'
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF p_first < s.checkin_at THEN
        RAISE EXCEPTION '%', CASE WHEN p_plural
            THEN 'Cannot record locations: one or more points have recorded_at before the session start time.'
            ELSE 'Cannot record location: recorded_at is before the session start time.' END
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF s.checkout_at IS NOT NULL AND p_last > s.checkout_at THEN
        RAISE EXCEPTION '%', CASE WHEN p_plural
            THEN 'Cannot record locations: one or more points have recorded_at after the session end time.'
            ELSE 'Cannot record location: recorded_at is after the session end time.' END
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    RETURN s;
END
$$;

-- app.record_locations: the batch ingest path. Checks the session once for the whole batch, then inserts
-- all or nothing; a fix already stored (same session and recorded_at) is skipped. Returns how many rows
-- were new.
CREATE FUNCTION app.record_locations(p_org uuid,
                                     p_session uuid,
                                     p_latitude double precision[],
                                     p_longitude double precision[],
                                     p_accuracy double precision[],
                                     p_recorded_at timestamptz[],
                                     p_sequence integer[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    s        attendance_sessions;
    inserted integer;
BEGIN
    s := app.locations_session(p_org, p_session, (SELECT min(t) FROM unnest(p_recorded_at) AS t),
                               (SELECT max(t) FROM unnest(p_recorded_at) AS t), cardinality(p_recorded_at) > 1);
    INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id,
                               latitude, longitude, accuracy, sequence_number)
    SELECT s.organization_id, s.id, u.at, s.employee_id, u.lat, u.lon, u.acc, u.seq
      FROM unnest(p_recorded_at, p_latitude, p_longitude, p_accuracy, p_sequence) AS u(at, lat, lon, acc, seq)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END
$$;

-- app.record_location: the single-fix path, answering the stored row whether it is new or was already
-- there (a row this transaction inserted has created_at = now()), in one round trip.
CREATE FUNCTION app.record_location(p_org uuid, p_session uuid, p_latitude double precision,
                                    p_longitude double precision, p_accuracy double precision,
                                    p_recorded_at timestamptz, p_sequence integer) RETURNS gps_locations
    LANGUAGE plpgsql
    AS $$
DECLARE
    s      attendance_sessions;
    stored gps_locations;
BEGIN
    s := app.locations_session(p_org, p_session, p_recorded_at, p_recorded_at, false);
    INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id,
                               latitude, longitude, accuracy, sequence_number)
    VALUES (s.organization_id, s.id, p_recorded_at, s.employee_id, p_latitude, p_longitude, p_accuracy, p_sequence)
    ON CONFLICT DO NOTHING
    RETURNING * INTO stored;
    IF NOT FOUND THEN
        SELECT * INTO stored FROM gps_locations g
         WHERE g.organization_id = s.organization_id AND g.session_id = s.id AND g.recorded_at = p_recorded_at;
    END IF;
    RETURN stored;
END
$$;

-- app.simplified_route: the fixes of a session to draw at a tolerance of p_tolerance_m metres, in
-- recorded_at order (Douglas-Peucker on the fixes in Web Mercator, tolerance scaled by latitude; the
-- endpoints are always kept). Runs as the caller, so it sees only what the caller may see.
CREATE FUNCTION app.simplified_route(p_org uuid, p_session uuid, p_tolerance_m double precision)
    RETURNS SETOF gps_locations
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app
    AS $$
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
    $$;

-- Privileges and row-level security ------------------------------------------------------------------------

GRANT SELECT, INSERT ON gps_locations TO fieldtrack_api;
GRANT SELECT ON tracking_settings, session_summaries TO fieldtrack_api;
GRANT INSERT (organization_id, max_accuracy_m, max_speed_mps, jitter_floor_m, stay_radius_m, stay_min_seconds,
              max_session_hours),
      UPDATE (max_accuracy_m, max_speed_mps, jitter_floor_m, stay_radius_m, stay_min_seconds, max_session_hours)
    ON tracking_settings TO fieldtrack_api;

ALTER TABLE gps_locations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tracking_settings ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE session_summaries ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- GPS fixes: written by their employee only, read by that employee and the organization's admins.
CREATE POLICY gps_locations_select ON gps_locations FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY gps_locations_insert ON gps_locations FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND employee_id = (SELECT app.employee_id()));

CREATE POLICY tracking_settings_select ON tracking_settings FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()));
CREATE POLICY tracking_settings_insert ON tracking_settings FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');
CREATE POLICY tracking_settings_update ON tracking_settings FOR UPDATE TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN')
    WITH CHECK (organization_id = (SELECT app.org_id()));

-- A summary is visible to whoever can see its session.
CREATE POLICY session_summaries_select ON session_summaries FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND EXISTS (
        SELECT FROM attendance_sessions s
         WHERE s.organization_id = session_summaries.organization_id AND s.id = session_summaries.session_id));
