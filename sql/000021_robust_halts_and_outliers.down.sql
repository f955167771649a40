-- 000021 reversed: app.clean_track as 000019 made it, then the functions 000021 added.
CREATE OR REPLACE FUNCTION app.clean_track(p_org uuid, p_session uuid, p_cfg tracking_settings, p_naive boolean DEFAULT true)
    RETURNS app.track_cleaning
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    q0        constant double precision := 0.01;   -- m^2/s^3, speed changes
    s_w       constant double precision := 0.025;  -- rad^2/s, heading changes
    earth     constant double precision := 6371008.8;
    lambdas   constant double precision[] := ARRAY[0.01, 10 ^ -1.5, 0.1, 10 ^ -0.5, 1, 10 ^ 0.5, 10];
    v_still   constant double precision := p_cfg.stay_radius_m / p_cfg.stay_min_seconds;
    v0var     constant double precision := p_cfg.max_speed_mps ^ 2;
    rad2      constant double precision := p_cfg.stay_radius_m ^ 2;
    jit2      constant double precision := p_cfg.jitter_floor_m ^ 2;
    res       app.track_cleaning;
    -- the fixes passing the accuracy filter, in recorded_at order
    f_lat     double precision[];
    f_lon     double precision[];
    f_sig     double precision[];
    f_t       double precision[];
    f_at      timestamptz[];
    f_cos     double precision[];
    n         integer;
    -- the speed filter's survivors: index into f_* and segment
    g_k       integer[] := '{}';
    g_seg     integer[] := '{}';
    m         integer := 0;
    ref       integer := 0;
    run       integer := 0;
    seg       integer := 1;
    -- one segment: g_* from s0 to s1 (nn fixes), projected on its tangent plane, and smoothed
    s0        integer := 1;
    s1        integer;
    nn        integer;
    lat0      double precision;
    lon0      double precision;
    cl        double precision;
    d         double precision;
    x         double precision[];
    y         double precision[];
    t         double precision[];
    r         double precision[];
    lam       double precision;
    li        integer;
    ll        double precision;
    best_ll   double precision;
    sx        double precision[];
    sy        double precision[];
    svx       double precision[];
    svy       double precision[];
    -- the segment's points before the jitter gate: om of them, a moving fix (o_stay NULL) or a stay
    o_x       double precision[] := '{}';
    o_y       double precision[] := '{}';
    o_j       integer[] := '{}';  -- the segment's fix (1..nn); a stay's first
    o_stay    integer[] := '{}';
    om        integer;
    last_o    integer;            -- o_ index of the segment's last stay: a stay's arrival stops there
    i         integer;
    k         integer;
    j         integer;
    h         integer;
    last_slow integer;
    cnt       integer;
    cx        double precision;
    cy        double precision;
    wx        double precision;
    wy        double precision;
    ws        double precision;
    -- the stays and the track (local arrays: element assignment in place)
    st_start  timestamptz[] := '{}';
    st_end    timestamptz[] := '{}';
    st_lat    double precision[] := '{}';
    st_lon    double precision[] := '{}';
    st_fixes  integer[] := '{}';
    nstay     integer := 0;
    tr_lat    double precision[] := '{}';
    tr_lon    double precision[] := '{}';
    tr_at     timestamptz[] := '{}';
    tr_seg    integer[] := '{}';
    tr_stay   integer[] := '{}';
    np        integer := 0;
    sg_fixes  integer[] := '{}';
    sg_lambda double precision[] := '{}';
    kx        double precision;
    ky        double precision;
BEGIN
    -- 1. accuracy (ok), in recorded_at order; the naive distance over every fix
    SELECT count(*)::integer,
           array_agg(g.latitude ORDER BY g.recorded_at) FILTER (WHERE g.ok),
           array_agg(g.longitude ORDER BY g.recorded_at) FILTER (WHERE g.ok),
           array_agg(greatest(g.accuracy, 1) ORDER BY g.recorded_at) FILTER (WHERE g.ok),
           array_agg(extract(epoch FROM g.recorded_at)::double precision ORDER BY g.recorded_at) FILTER (WHERE g.ok),
           array_agg(g.recorded_at ORDER BY g.recorded_at) FILTER (WHERE g.ok),
           array_agg(cos(radians(g.latitude)) ORDER BY g.recorded_at) FILTER (WHERE g.ok),
           ST_Length(ST_MakeLine(ST_SetSRID(ST_MakePoint(g.longitude, g.latitude), 4326) ORDER BY g.recorded_at)
                         FILTER (WHERE p_naive)::geography)
      INTO res.received, f_lat, f_lon, f_sig, f_t, f_at, f_cos, res.naive_distance_m
      FROM (SELECT l.recorded_at, l.latitude, l.longitude, coalesce(l.accuracy, 0) AS accuracy,
                   coalesce(l.accuracy, 0) <= p_cfg.max_accuracy_m AS ok
              FROM gps_locations l
             WHERE l.organization_id = p_org AND l.session_id = p_session) g;
    n := coalesce(cardinality(f_lat), 0);
    res.naive_distance_m := CASE WHEN res.received < 2 AND p_naive THEN 0 ELSE res.naive_distance_m END;
    res.dropped_inaccurate := res.received - n;
    res.dropped_impossible_speed := 0;
    res.dropped_duplicate := 0;
    res.dropped_inside_stay := 0;
    res.dropped_jitter := 0;
    res.kept := 0;

    -- 2. impossible speed (the distance from the last accepted fix: app.haversine_m, inline)
    FOR k IN 1 .. n LOOP
        IF ref > 0 AND 2 * earth * asin(least(1, sqrt(sin(radians(f_lat[k] - f_lat[ref]) / 2) ^ 2
                                                    + f_cos[ref] * f_cos[k] * sin(radians(f_lon[k] - f_lon[ref]) / 2) ^ 2)))
                       - 2 * sqrt(f_sig[ref] ^ 2 + f_sig[k] ^ 2)
                       > p_cfg.max_speed_mps * greatest(f_t[k] - f_t[ref], 1) THEN
            run := run + 1;
            IF run < 5 THEN
                res.dropped_impossible_speed := res.dropped_impossible_speed + 1;
                CONTINUE;
            END IF;
            seg := seg + 1;
        END IF;
        run := 0;
        ref := k;
        m := m + 1;
        g_k[m] := k;
        g_seg[m] := seg;
    END LOOP;

    WHILE s0 <= m LOOP
        s1 := s0;
        WHILE s1 < m AND g_seg[s1 + 1] = g_seg[s0] LOOP
            s1 := s1 + 1;
        END LOOP;
        nn := s1 - s0 + 1;
        seg := g_seg[s0];

        -- 3. the tangent plane at the segment's first fix, lambda, the smoother
        lat0 := f_lat[g_k[s0]];
        lon0 := f_lon[g_k[s0]];
        cl := greatest(cos(radians(lat0)), 1e-9);
        x := '{}'; y := '{}'; t := '{}'; r := '{}';
        FOR j IN 1 .. nn LOOP
            k := g_k[s0 + j - 1];
            d := f_lon[k] - lon0;
            IF d > 180 THEN d := d - 360; ELSIF d < -180 THEN d := d + 360; END IF;
            x[j] := radians(d) * earth * cl;
            y[j] := radians(f_lat[k] - lat0) * earth;
            t[j] := f_t[k] - f_t[g_k[s0]];
            r[j] := f_sig[k] ^ 2;
        END LOOP;
        -- lambda: from 1, up or down the grid while the likelihood grows (it has one maximum)
        li := 5;
        IF nn > 2 THEN
            best_ll := (app.cv_smooth(t, x, y, r, lambdas[li], v0var, q0, s_w, false)).loglik;
            ll := (app.cv_smooth(t, x, y, r, lambdas[li - 1], v0var, q0, s_w, false)).loglik;
            IF ll > best_ll THEN
                li := li - 1;
                best_ll := ll;
                WHILE li > 1 LOOP
                    ll := (app.cv_smooth(t, x, y, r, lambdas[li - 1], v0var, q0, s_w, false)).loglik;
                    EXIT WHEN ll <= best_ll;
                    li := li - 1;
                    best_ll := ll;
                END LOOP;
            ELSE
                WHILE li < cardinality(lambdas) LOOP
                    ll := (app.cv_smooth(t, x, y, r, lambdas[li + 1], v0var, q0, s_w, false)).loglik;
                    EXIT WHEN ll <= best_ll;
                    li := li + 1;
                    best_ll := ll;
                END LOOP;
            END IF;
        END IF;
        lam := lambdas[li];
        sg_fixes[seg] := nn;
        sg_lambda[seg] := lam;
        SELECT c.sx, c.sy, c.svx, c.svy INTO sx, sy, svx, svy
          FROM app.cv_smooth(t, x, y, r, lam, v0var, q0, s_w, true) c;

        -- 4. stays
        om := 0;
        last_o := 0;
        i := 1;
        WHILE i <= nn LOOP
            IF svx[i] ^ 2 + svy[i] ^ 2 >= v_still ^ 2 THEN
                om := om + 1; o_x[om] := sx[i]; o_y[om] := sy[i]; o_j[om] := i; o_stay[om] := NULL;
                i := i + 1;
                CONTINUE;
            END IF;
            -- still from i: follow while within the radius of the still fixes' centroid
            cx := sx[i]; cy := sy[i]; cnt := 1; last_slow := i;
            k := i + 1;
            WHILE k <= nn AND (sx[k] - cx) ^ 2 + (sy[k] - cy) ^ 2 <= rad2 LOOP
                IF svx[k] ^ 2 + svy[k] ^ 2 < v_still ^ 2 THEN
                    last_slow := k;
                    cnt := cnt + 1;
                    cx := cx + (sx[k] - cx) / cnt;
                    cy := cy + (sy[k] - cy) / cnt;
                END IF;
                k := k + 1;
            END LOOP;
            IF t[last_slow] - t[i] < p_cfg.stay_min_seconds THEN
                -- too short to be a stay: moving fixes (the scan goes on after the last still one)
                FOR h IN i .. last_slow LOOP
                    om := om + 1; o_x[om] := sx[h]; o_y[om] := sy[h]; o_j[om] := h; o_stay[om] := NULL;
                END LOOP;
                i := last_slow + 1;
                CONTINUE;
            END IF;
            -- A stay: from the arrival within the radius (fixes already emitted, taken back) to k - 1.
            j := i;
            WHILE om > last_o AND (o_x[om] - cx) ^ 2 + (o_y[om] - cy) ^ 2 <= rad2 LOOP
                j := o_j[om];
                om := om - 1;
            END LOOP;
            wx := 0; wy := 0; ws := 0;
            FOR h IN j .. k - 1 LOOP
                wx := wx + x[h] / r[h];
                wy := wy + y[h] / r[h];
                ws := ws + 1 / r[h];
            END LOOP;
            nstay := nstay + 1;
            om := om + 1; o_x[om] := wx / ws; o_y[om] := wy / ws; o_j[om] := j; o_stay[om] := nstay;
            last_o := om;
            st_start[nstay] := f_at[g_k[s0 + j - 1]];
            st_end[nstay] := f_at[g_k[s0 + k - 2]];
            st_lat[nstay] := lat0 + degrees(o_y[om] / earth);
            d := lon0 + degrees(o_x[om] / (earth * cl));
            st_lon[nstay] := CASE WHEN d > 180 THEN d - 360 WHEN d < -180 THEN d + 360 ELSE d END;
            st_fixes[nstay] := k - j;
            res.dropped_inside_stay := res.dropped_inside_stay + (k - j);
            i := k;
        END LOOP;

        -- 5. jitter, and the segment's points on the track
        FOR h IN 1 .. om LOOP
            IF h > 1 AND o_stay[h] IS NULL AND (o_x[h] - kx) ^ 2 + (o_y[h] - ky) ^ 2 < jit2 THEN
                res.dropped_jitter := res.dropped_jitter + 1;
                CONTINUE;
            END IF;
            kx := o_x[h];
            ky := o_y[h];
            np := np + 1;
            IF o_stay[h] IS NULL THEN
                res.kept := res.kept + 1;
                tr_lat[np] := lat0 + degrees(ky / earth);
                d := lon0 + degrees(kx / (earth * cl));
                tr_lon[np] := CASE WHEN d > 180 THEN d - 360 WHEN d < -180 THEN d + 360 ELSE d END;
            ELSE
                tr_lat[np] := st_lat[o_stay[h]];
                tr_lon[np] := st_lon[o_stay[h]];
            END IF;
            tr_at[np] := f_at[g_k[s0 + o_j[h] - 1]];
            tr_seg[np] := seg;
            tr_stay[np] := o_stay[h];
        END LOOP;
        s0 := s1 + 1;
    END LOOP;

    -- 6. the geodesic length of each segment
    SELECT coalesce(sum(len), 0) INTO res.distance_m
      FROM (SELECT ST_Length(ST_MakeLine(ST_SetSRID(ST_MakePoint(u.x, u.y), 4326) ORDER BY u.ord)::geography) AS len
              FROM unnest(tr_lon, tr_lat, tr_seg) WITH ORDINALITY AS u(x, y, s, ord)
             GROUP BY u.s
            HAVING count(*) > 1) segs;
    res.points_used := np;
    res.track_lat := tr_lat; res.track_lon := tr_lon; res.track_at := tr_at;
    res.track_segment := tr_seg; res.track_stay := tr_stay;
    res.stay_start := st_start; res.stay_end := st_end; res.stay_lat := st_lat; res.stay_lon := st_lon;
    res.stay_fixes := st_fixes;
    res.segment_fixes := sg_fixes; res.segment_noise_scale := sg_lambda;
    res.model := jsonb_build_object('speed_change_density_m2_s3', q0, 'heading_change_density_rad2_s', s_w,
                                    'still_speed_mps', v_still, 'noise_scale_grid', to_jsonb(lambdas));
    RETURN res;
END
$$;

DROP FUNCTION app.cv_screen(double precision[], double precision[], double precision[], double precision[],
                            double precision, double precision, double precision, double precision, double precision);
DROP FUNCTION app.cv_noise_scale(double precision[], double precision[], double precision[], double precision[],
                                 double precision[], double precision, double precision, double precision,
                                 double precision);
