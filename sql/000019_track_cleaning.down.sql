-- 000019 reversed: app.session_distance as 000006 made it, then the report and the cleaning's functions.
CREATE OR REPLACE FUNCTION app.session_distance(p_org uuid, p_session uuid,
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

DROP FUNCTION IF EXISTS app.distance_report(uuid, uuid);
DROP FUNCTION IF EXISTS app.clean_track(uuid, uuid, tracking_settings, boolean);
DROP FUNCTION IF EXISTS app.cv_smooth(double precision[], double precision[], double precision[], double precision[],
                                      double precision, double precision, double precision, double precision, boolean);
DROP TYPE IF EXISTS app.track_cleaning;
