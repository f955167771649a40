-- 000019 GPS cleaning that holds for slow movement under poor accuracy, and one function computing the
-- distance and everything its report shows (issue 13).
--
-- Why:
-- * 000006's cleaning undercounted a slow walk downtown by about 7%: walking at 1 m/s with fixes every
--   5-20 s and a reported accuracy of 20-60 m, (a) the stay detector's radius, max(stay_radius_m, 3 x
--   accuracy) = up to 180 m, held a walker for minutes (a walker stays within 180 m of a running centroid
--   for about six minutes), so whole stretches of the walk, corners included, became one point; (b) moves
--   shorter than max(jitter_floor_m, 2 sigma) of the raw fixes were ignored, which is most real steps
--   there. Both thresholds scaled with the reported accuracy, and the reported accuracy says how far a fix
--   may be from the truth, not how much consecutive fixes scatter: under buildings the error drifts over
--   minutes (multipath), so consecutive fixes are much closer to each other than the accuracy suggests.
-- * The cleaning is now a smoother whose noise level is learnt from the fixes themselves, and a stay is
--   decided by the smoothed speed. Per segment of fixes, in recorded_at order:
--   1. Accuracy: fixes reporting an accuracy worse than max_accuracy_m are dropped (inaccurate). A fix
--      without an accuracy counts as 1 m (it passes, as before).
--   2. Impossible speed: a fix farther from the last accepted fix than max_speed_mps x the time between
--      them (at least 1 s) plus twice the standard deviation of the two fixes' difference,
--      2 sqrt(acc1^2 + acc2^2), is a glitch (impossible_speed). After five in a row the last accepted fix
--      was the outlier: the track restarts at the fifth as a new segment, without bridging the gap.
--   3. Smoothing: each segment, projected on the plane tangent at its first fix (east, north in metres),
--      is smoothed by a constant-velocity Kalman filter and a Rauch-Tung-Striebel backward pass, the two
--      axes independent with the same covariance. State: position and velocity. Motion model: the
--      acceleration is white noise of spectral density q (m^2/s^3): over dt the position variance grows
--      by q dt^3/3, the velocity variance by q dt, their covariance by q dt^2/2. q is stated physically as
--      the sum of two independent parts: speed changes, q0 = 0.01 m^2/s^3 (a pace change of 0.5 m/s builds
--      up over 25 s: 0.5^2 = 0.01 x 25), and heading changes, whose lateral acceleration is v x omega with
--      a turn rate omega of density s_w = 0.025 rad^2/s (the heading wanders by a right angle in 100 s:
--      (pi/2)^2 / 100), hence q = q0 + s_w v^2, with v the filter's current speed estimate: a walker at
--      1 m/s gets q = 0.035, a car at 15 m/s q = 5.6. The velocity starts unknown: variance
--      max_speed_mps^2 per axis. Measurement: the fix's position with variance lambda x accuracy^2 per
--      axis. lambda is the segment's measurement-noise scale, the share of the reported variance that is
--      fix-to-fix scatter: it is estimated by maximum likelihood of the filter's innovations on the
--      grid 10^-2, 10^-1.5, ..., 10^1, searched from 1 up or down while the likelihood grows (in practice
--      it has one maximum; 3-6 forward passes). A drifting error gives a small lambda (the fixes are
--      consistent with each other at the scale of seconds), a phone reporting 5 m for 15 m of jitter a
--      large one; the grid's floor takes no phone for more than ten times as precise as it reports.
--      Segments of fewer than three fixes use 1.
--   4. Stays: the smoother's speed says whether the phone stood still. A stay begins at a fix whose
--      smoothed speed is below stay_radius_m / stay_min_seconds (a speed that would not leave the stay
--      radius within the minimum stay: 0.42 m/s by default) and lasts while the smoothed positions stay
--      within stay_radius_m of the centroid of its still fixes; it counts when its still fixes span at
--      least stay_min_seconds. It then takes in the adjacent fixes within stay_radius_m of that centroid
--      (arriving and leaving) and collapses, all its fixes (inside_stay), into one point: their
--      inverse-variance weighted mean. A walk at 1 m/s does not become a stay, however poor the accuracy
--      (000006's radius grew with it); a still phone's scatter adds nothing, however long it lies on the
--      desk.
--   5. Jitter: a smoothed position within jitter_floor_m of the last kept point does not advance the track
--      (jitter); slow movement still accumulates, as the next position is measured from the same kept
--      point. This removes the smoother's residual wander during short stops (a red light).
--   6. Distance: the geodesic length (PostGIS geography) of each segment's kept points and stay centres.
--   Every step is one pass over arrays (the stay scan visits a fix at most twice): linear in the fixes,
--   and deterministic, since the fixes are ordered by recorded_at, unique per session (the primary key).
-- * app.clean_track computes it all, with what a distance report shows: the fixes received, kept and
--   dropped by reason (inaccurate, impossible_speed, duplicate, inside_stay, jitter; kept plus the
--   dropped is what was received), the stays, the cleaned track, the distance, the naive distance (the
--   plain geodesic length of every received fix in time order) and each segment's lambda. duplicate is
--   always 0: a fix uploaded twice is stored once (the primary key), so none reaches the cleaning.
--   app.session_distance is a wrapper of it with its old signature and columns, so app.measure_session,
--   the check-out, late fixes, recalculation, replays and the minute's measure of open sessions are
--   unchanged; app.distance_report is the report as jsonb. All run as the caller (row-level security).
--   The naive distance is computed for the report only (a geodesic over every fix: a fifth of the cost).
--   The errors measured on synthetic tracks (walk, cycling, highway, tunnel, spoofed day) are in the
--   README, with the cost (linear, about 25 us a fix).
-- Locks: none on tables; replaces app.session_distance, creates a type and functions.

CREATE TYPE app.track_cleaning AS (
    distance_m               double precision,   -- geodesic length of the cleaned track
    naive_distance_m         double precision,   -- geodesic length of every received fix in time order
    received                 integer,
    kept                     integer,            -- fixes whose smoothed position is a point of the track
    dropped_inaccurate       integer,
    dropped_impossible_speed integer,
    dropped_duplicate        integer,            -- always 0 (see above)
    dropped_inside_stay      integer,
    dropped_jitter           integer,
    points_used              integer,            -- points of the cleaned track: kept fixes and stays
    track_lat                double precision[], -- the cleaned track, in order
    track_lon                double precision[],
    track_at                 timestamptz[],      -- the fix's time; a stay's start for a stay
    track_segment            integer[],          -- 1, 2, ...: a new segment where the track restarts
    track_stay               integer[],          -- the stay a point stands for (index in stay_*), or NULL
    stay_start               timestamptz[],
    stay_end                 timestamptz[],
    stay_lat                 double precision[],
    stay_lon                 double precision[],
    stay_fixes               integer[],
    segment_fixes            integer[],          -- per segment: fixes after the speed filter
    segment_noise_scale      double precision[], -- per segment: lambda
    model                    jsonb               -- the model's constants (densities, still speed, lambda grid)
);

-- app.cv_smooth: the constant-velocity Kalman filter of 000019's header over t (s), x, y (m) with
-- measurement variances lam x r, velocity prior variance v0var, process noise q0 + s_w x speed^2. Returns
-- the innovations' log-likelihood (from the third fix: the second only fixes the velocity); with smooth,
-- also the Rauch-Tung-Striebel smoothed positions and velocities (NULL arrays otherwise). The two axes share
-- one covariance [a b; b c] (same model, same measurement variance), hence one backward gain per step.
CREATE FUNCTION app.cv_smooth(t double precision[], x double precision[], y double precision[],
                              r double precision[], lam double precision, v0var double precision,
                              q0 double precision, s_w double precision, smooth boolean,
                              OUT loglik double precision,
                              OUT sx double precision[], OUT sy double precision[],
                              OUT svx double precision[], OUT svy double precision[])
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog
    AS $$
DECLARE
    n   integer := cardinality(t);
    -- the filtered state and covariance (forward), the smoothed state (backward)
    px  double precision := x[1];
    py  double precision := y[1];
    vx  double precision := 0;
    vy  double precision := 0;
    a   double precision := lam * r[1];
    b   double precision := 0;
    c   double precision := v0var;
    -- the prediction's covariance
    a2  double precision;
    b2  double precision;
    c2  double precision;
    dt  double precision;
    q   double precision;
    s   double precision;
    k0  double precision;
    k1  double precision;
    ix  double precision;
    iy  double precision;
    -- the backward gains G(k) = P_f(k) F' P_p(k+1)^-1, made forward when P_p(k+1) is
    g00 double precision[];
    g01 double precision[];
    g10 double precision[];
    g11 double precision[];
    dx  double precision;
    dy  double precision;
    dvx double precision;
    dvy double precision;
BEGIN
    loglik := 0;
    IF smooth THEN
        sx[1] := px; sy[1] := py; svx[1] := vx; svy[1] := vy;
    END IF;
    FOR k IN 2 .. n LOOP
        dt := t[k] - t[k - 1];
        q := q0 + s_w * (vx * vx + vy * vy);
        a2 := a + dt * (2 * b + dt * c) + q * dt * dt * dt / 3;
        b2 := b + dt * c + q * dt * dt / 2;
        c2 := c + q * dt;
        IF smooth THEN  -- P_f(k-1) F' = [a + dt b, b; b + dt c, c], times P_p(k)^-1
            s := a2 * c2 - b2 * b2;
            g00[k - 1] := ((a + dt * b) * c2 - b * b2) / s;
            g01[k - 1] := (b * a2 - (a + dt * b) * b2) / s;
            g10[k - 1] := ((b + dt * c) * c2 - c * b2) / s;
            g11[k - 1] := (c * a2 - (b + dt * c) * b2) / s;
        END IF;
        s := a2 + lam * r[k];
        k0 := a2 / s;
        k1 := b2 / s;
        ix := x[k] - (px + dt * vx);
        iy := y[k] - (py + dt * vy);
        IF k > 2 THEN
            loglik := loglik - 0.5 * ((ix * ix + iy * iy) / s + 2 * ln(s));
        END IF;
        px := px + dt * vx + k0 * ix;
        py := py + dt * vy + k0 * iy;
        vx := vx + k1 * ix;
        vy := vy + k1 * iy;
        a := a2 * (1 - k0);
        b := b2 * (1 - k0);
        c := c2 - k1 * b2;
        IF smooth THEN
            sx[k] := px; sy[k] := py; svx[k] := vx; svy[k] := vy;
        END IF;
    END LOOP;
    IF NOT smooth THEN
        RETURN;
    END IF;
    -- Backward: x_s(k) = x_f(k) + G(k) (x_s(k+1) - F x_f(k)); px.. hold x_s(k+1), sx[k].. x_f(k) until
    -- replaced by x_s(k).
    FOR k IN REVERSE n - 1 .. 1 LOOP
        dt := t[k + 1] - t[k];
        dx := px - (sx[k] + dt * svx[k]);
        dy := py - (sy[k] + dt * svy[k]);
        dvx := vx - svx[k];
        dvy := vy - svy[k];
        px := sx[k] + g00[k] * dx + g01[k] * dvx;
        py := sy[k] + g00[k] * dy + g01[k] * dvy;
        vx := svx[k] + g10[k] * dx + g11[k] * dvx;
        vy := svy[k] + g10[k] * dy + g11[k] * dvy;
        sx[k] := px; sy[k] := py; svx[k] := vx; svy[k] := vy;
    END LOOP;
END
$$;

-- app.clean_track: a session's fixes cleaned as 000019's header derives, with the figures of its distance
-- report, under the settings p_cfg; the naive distance is NULL unless p_naive (its geodesic over every fix
-- costs a fifth of the whole, and the distance does not need it). Reads the fixes once; runs as the caller
-- (it sees what the caller may see). A session without fixes has distance 0 and empty arrays.
CREATE FUNCTION app.clean_track(p_org uuid, p_session uuid, p_cfg tracking_settings, p_naive boolean DEFAULT true)
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

-- app.session_distance: as 000006 declared it (its callers are unchanged), computed by app.clean_track with
-- the organization's settings. points_used counts the cleaned track's points (kept fixes and stays).
CREATE OR REPLACE FUNCTION app.session_distance(p_org uuid, p_session uuid,
                                                OUT distance_m double precision,
                                                OUT points_total integer,
                                                OUT points_used integer)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app
    AS $$
        SELECT c.distance_m, c.received, c.points_used
          FROM app.clean_track(p_org, p_session, app.tracking_settings_for(p_org), false) c
    $$;

-- app.distance_report: what the distance of a session is made of, as jsonb, from app.clean_track under the
-- organization's settings: the distance (metres, and kilometres rounded as the session stores them), the
-- naive distance, the fixes received, kept and dropped by reason, the stays, the cleaned track, the segments,
-- the settings and the model's constants. Runs as the caller: a caller who may not see the session's fixes
-- gets a report of no fixes.
CREATE FUNCTION app.distance_report(p_org uuid, p_session uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    cfg tracking_settings := app.tracking_settings_for(p_org);
    c   app.track_cleaning := app.clean_track(p_org, p_session, cfg, true);
BEGIN
    RETURN jsonb_build_object(
        'session_id', p_session,
        'distance_m', c.distance_m,
        'distance_km', round((c.distance_m / 1000)::numeric, 3)::double precision,
        'naive_distance_m', c.naive_distance_m,
        'fixes', jsonb_build_object(
            'received', c.received,
            'kept', c.kept,
            'dropped', jsonb_build_object(
                'inaccurate', c.dropped_inaccurate,
                'impossible_speed', c.dropped_impossible_speed,
                'duplicate', c.dropped_duplicate,
                'inside_stay', c.dropped_inside_stay,
                'jitter', c.dropped_jitter)),
        'stays', (SELECT coalesce(jsonb_agg(jsonb_build_object('start', u.s, 'end', u.e, 'latitude', u.la,
                                                               'longitude', u.lo, 'fixes', u.f) ORDER BY u.ord), '[]')
                    FROM unnest(c.stay_start, c.stay_end, c.stay_lat, c.stay_lon, c.stay_fixes)
                         WITH ORDINALITY AS u(s, e, la, lo, f, ord)),
        'track', (SELECT coalesce(jsonb_agg(jsonb_build_object('latitude', u.la, 'longitude', u.lo,
                                                               'recorded_at', u.at, 'segment', u.sg,
                                                               'stay', u.st) ORDER BY u.ord), '[]')
                    FROM unnest(c.track_lat, c.track_lon, c.track_at, c.track_segment, c.track_stay)
                         WITH ORDINALITY AS u(la, lo, at, sg, st, ord)),
        'segments', (SELECT coalesce(jsonb_agg(jsonb_build_object('segment', u.ord, 'fixes', u.f,
                                                                  'noise_scale', u.l) ORDER BY u.ord), '[]')
                       FROM unnest(c.segment_fixes, c.segment_noise_scale) WITH ORDINALITY AS u(f, l, ord)),
        'settings', to_jsonb(cfg) - 'organization_id' - 'updated_at',
        'model', c.model);
END
$$;
