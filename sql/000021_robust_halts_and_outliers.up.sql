-- 000021 GPS cleaning that holds under error models other than the one it was derived on: outliers the
-- speed filter lets through, pauses, and stays under a drifting error.
--
-- Why: 000019's cleaning was measured on one error generator (a smooth second-order drift). Tracks made
-- with others (internal/httpapi/walks_test.go: first-order Gauss-Markov drift, a slowly reverting random
-- walk, sums of sinusoids; accuracy following the error or not; regular or bursty sampling; street grids
-- with waits at crossings; a café stay; a phone parked for hours; single fixes thrown 100-500 m) showed
-- three biases with a cause in the method, over 20 seeds each (README: the error per variant, before and
-- after):
-- * Stays under a drifting error broke apart: a parked phone under 20-40 m of drift collected 134 m in
--   4 h on average (8 of 20 seeds above 100 m; 660 m under a rougher drift, up to 5 km). A stay lasted
--   while the smoothed positions stayed within stay_radius_m (50 m) of its centre, but a still phone's
--   positions follow the drift, which wanders further; each time it crossed the radius the stay ended,
--   and the way out and into the next stay counted as movement.
-- * Fixes thrown 100-500 m by multipath (five in a walk) added 19% to it: at walking pace they are
--   possible speeds (the speed filter allows 70 m/s), and the smoother, which trusts fixes as consistent
--   with each other as a drift makes them (lambda small), was pulled out to each and back.
-- * Short waits (20-90 s at crossings) under a drift added length: the smoothed track follows the drift
--   while the walker stands, and a wait shorter than stay_min_seconds was not a stay.
-- The method is 000019's with these changes (app.clean_track replaced; app.session_distance and
-- app.distance_report, its wrappers, unchanged):
--   3. Outliers: with the segment's maximum-likelihood lambda, the filter's innovations are screened,
--      forward and backward in time (app.cv_screen): a fix whose squared innovation, over the innovation's
--      variance and both axes, is beyond the chi-square gate for a false alarm in a million (27.6, 5.3
--      sigma) in either direction is not used to update the filter and is taken out (counted as
--      impossible_speed: a jump the motion model and the fixes' own scatter make impossible; the backward
--      pass judges a track's first fixes, which the forward filter knows too little to), unless the next
--      fix is beyond the gate too: then the track itself went where the filter did not expect (a start
--      after a stop, a sudden turn), neither is taken out, and the filter restarts at the second (so two
--      thrown fixes in a row stay). lambda is estimated again without the outliers (an outlier inflates
--      it, and so hides others), and the screen runs again while lambda changes, at most three rounds.
--      The gate is relative to the fixes' scatter, not to their reported accuracy: a 150 m jump in fixes
--      that otherwise move by metres is an outlier even when the phone reports 60 m.
--   4. Halts. A halt is a run of fixes from a still one (smoothed speed below stay_radius_m /
--      stay_min_seconds, as before) to the last still one within stay_radius_m of the still fixes' centre
--      (as before), and only if from its first still fix to its last it moved no faster than still on
--      average (new: net displacement below the still speed times its duration, so that a walk at
--      walking pace between two slow fixes is never a halt). A halt shorter than stay_min_seconds is a
--      pause (new): one point at its still fixes' centre, its other fixes dropped as jitter (the way in
--      and the way out still count, so slow movement through it still counts its net displacement). A
--      longer one is a stay, which now goes on while the phone is within the stay's reach of its centre
--      and ends at its last fix within stay_radius_m (what follows it, beyond the radius, is the
--      departure). The reach is twice the stay's RMS reported accuracy, at least stay_radius_m: with the
--      accuracy the radius of 68% confidence (Android's definition), twice it is the 99% radius of the
--      error the phone states, so a phone still within it is consistent with not having moved. It
--      is the net displacement that decides, not the smoothed speed: a still phone's smoothed positions
--      drift slowly but boundedly, a leaving phone's do not come back. With an accurate phone (5-15 m) the
--      reach is the radius, as before.
--   The rest (accuracy and speed filters, the smoother, the jitter gate, the geodesic length) is 000019's.
--   Still linear: the screening is two passes (forward, backward) per round, the halt scan visits a fix at
--   most three times (000019's twice, and once more a stay's reach beyond its radius).
-- Tried and not kept (README): a smoother whose state carries the error as a first-order Gauss-Markov
-- process (its variance and time constant by maximum likelihood) took a third off the rough drift's bias
-- but cut cyclists' and drivers' corners (-1% on city cycling, -1.4% on a spoofed day's drive) and made the
-- smooth drift's walk worse on one seed in 20 (-5.6%); an error model of the wrong spectral shape takes real
-- turns for error, and the likelihood cannot tell them apart. Re-weighted (sparse) acceleration noise
-- changed nothing measurable. A maximum-likelihood scale on the motion's noise q (0.1-3.16) took a walk
-- under white noise of 20-40 m from +6% to -2.7% but the downtown walk from +0.8% to -1.8% and bursty
-- sampling to -2 to -3.5%.
-- What remains (README): an error that moves like a walker - a first-order drift of 20-40 m with a time
-- constant of minutes (its fixes move 5-15 m every 10 s), or sinusoids of 1-10 min periods (up to 1.4 m/s)
-- - adds 10-30% to a walk: no filter of the fixes alone tells it from walking.
-- Locks: none on tables; replaces app.clean_track, creates two functions.

-- app.cv_noise_scale: 000019's maximum-likelihood lambda for app.cv_smooth on the grid lambdas (increasing),
-- searched from the grid's value start up or down while the likelihood grows (in practice it has one
-- maximum); start for fewer than three fixes. 000019 computed it inline, from 1; 000021 needs it again after
-- taking outliers out, and starts that search from the lambda found with them (a few passes fewer).
CREATE FUNCTION app.cv_noise_scale(t double precision[], x double precision[], y double precision[],
                                   r double precision[], lambdas double precision[], start double precision,
                                   v0var double precision, q0 double precision, s_w double precision)
    RETURNS double precision
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, app
    AS $$
DECLARE
    li      integer := coalesce(array_position(lambdas, start), 1);
    ll      double precision;
    best_ll double precision;
BEGIN
    IF cardinality(t) <= 2 THEN
        RETURN lambdas[li];
    END IF;
    best_ll := (app.cv_smooth(t, x, y, r, lambdas[li], v0var, q0, s_w, false)).loglik;
    IF li > 1 THEN
        ll := (app.cv_smooth(t, x, y, r, lambdas[li - 1], v0var, q0, s_w, false)).loglik;
    END IF;
    IF li > 1 AND ll > best_ll THEN
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
    RETURN lambdas[li];
END
$$;

-- app.cv_screen: which fixes are outliers to app.cv_smooth's filter (000019) under lam, run forward and
-- backward in time (the model is symmetric in time; at a track's start the forward filter knows too little to
-- judge, at its end the backward one). A fix whose innovation is beyond the gate (its squared Mahalanobis
-- distance over two axes) is not used to update that filter and is flagged, unless the next fix is beyond
-- the gate too: then the track itself went where neither prediction expected (a start after a long stop, a
-- turn the motion model finds sudden), neither is flagged and the filter starts again from the second, its
-- velocity unknown. Returns the flags, one a fix: flagged in either direction.
CREATE FUNCTION app.cv_screen(t double precision[], x double precision[], y double precision[],
                              r double precision[], lam double precision, v0var double precision,
                              q0 double precision, s_w double precision, gate double precision)
    RETURNS boolean[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog
    AS $$
DECLARE
    n    integer := cardinality(t);
    px   double precision;
    py   double precision;
    vx   double precision;
    vy   double precision;
    a    double precision;
    b    double precision;
    c    double precision;
    a2   double precision;
    b2   double precision;
    c2   double precision;
    dt   double precision;
    q    double precision;
    s    double precision;
    k0   double precision;
    k1   double precision;
    ix   double precision;
    iy   double precision;
    k    integer;            -- the fix, and the one before it in this direction
    kp   integer;
    held boolean;            -- the previous fix was beyond the gate
    fwd  boolean[] := array_fill(false, ARRAY[n]);
    out  boolean[] := array_fill(false, ARRAY[n]);
BEGIN
    FOR dir IN 1 .. 2 LOOP
        k := CASE dir WHEN 1 THEN 1 ELSE n END;
        px := x[k]; py := y[k]; vx := 0; vy := 0;
        a := lam * r[k]; b := 0; c := v0var;
        held := false;
        FOR h IN 2 .. n LOOP
            kp := k;
            k := CASE dir WHEN 1 THEN h ELSE n + 1 - h END;
            dt := abs(t[k] - t[kp]);
            q := q0 + s_w * (vx * vx + vy * vy);
            a2 := a + dt * (2 * b + dt * c) + q * dt * dt * dt / 3;
            b2 := b + dt * c + q * dt * dt / 2;
            c2 := c + q * dt;
            s := a2 + lam * r[k];
            ix := x[k] - (px + dt * vx);
            iy := y[k] - (py + dt * vy);
            IF (ix * ix + iy * iy) / s > gate THEN
                IF held THEN
                    out[kp] := false;
                    px := x[k]; py := y[k]; vx := 0; vy := 0;
                    a := lam * r[k]; b := 0; c := v0var;
                    held := false;
                ELSE
                    out[k] := true;
                    held := true;
                    px := px + dt * vx; py := py + dt * vy;
                    a := a2; b := b2; c := c2;
                END IF;
                CONTINUE;
            END IF;
            held := false;
            k0 := a2 / s;
            k1 := b2 / s;
            px := px + dt * vx + k0 * ix;
            py := py + dt * vy + k0 * iy;
            vx := vx + k1 * ix;
            vy := vy + k1 * iy;
            a := a2 * (1 - k0);
            b := b2 * (1 - k0);
            c := c2 - k1 * b2;
        END LOOP;
        IF dir = 1 THEN
            fwd := out;
            out := array_fill(false, ARRAY[n]);
        END IF;
    END LOOP;
    FOR h IN 1 .. n LOOP
        out[h] := out[h] OR fwd[h];
    END LOOP;
    RETURN out;
END
$$;

-- app.clean_track: a session's fixes cleaned as 000019's header derives and 000021's header amends, with the
-- figures of its distance report, under the settings p_cfg; the naive distance is NULL unless p_naive.
-- Reads the fixes once; runs as the caller (it sees what the caller may see). A session without fixes has
-- distance 0 and empty arrays.
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
    gate      constant double precision := -2 * ln(1e-6);  -- chi-square, two axes: a false alarm in a million
    reach_k   constant double precision := 2;  -- a stay's reach in RMS accuracies: the stated error's 99% radius
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
    gi        integer[];          -- the segment's fixes (index into f_*), outliers taken out
    outlier   boolean[];
    lam_prev  double precision;  -- lambda of the last screening round
    still     boolean[];
    reach2    double precision;
    last_in   integer;
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

        -- 3. the tangent plane at the segment's first fix, lambda, the outliers, the smoother
        lat0 := f_lat[g_k[s0]];
        lon0 := f_lon[g_k[s0]];
        cl := greatest(cos(radians(lat0)), 1e-9);
        x := '{}'; y := '{}'; t := '{}'; r := '{}'; gi := '{}';
        FOR j IN 1 .. nn LOOP
            k := g_k[s0 + j - 1];
            gi[j] := k;
            d := f_lon[k] - lon0;
            IF d > 180 THEN d := d - 360; ELSIF d < -180 THEN d := d + 360; END IF;
            x[j] := radians(d) * earth * cl;
            y[j] := radians(f_lat[k] - lat0) * earth;
            t[j] := f_t[k] - f_t[g_k[s0]];
            r[j] := f_sig[k] ^ 2;
        END LOOP;
        lam := app.cv_noise_scale(t, x, y, r, lambdas, 1, v0var, q0, s_w);
        -- outliers: isolated fixes the filter finds beyond the gate, taken out as if not received
        -- (impossible_speed), then lambda again without them, and again while lambda changes (at most three
        -- rounds): under the same lambda the screen would find nothing more, as it already ran the filter
        -- past the fixes it flagged without them
        FOR screening IN 1 .. 3 LOOP
            EXIT WHEN nn <= 2 OR (screening > 1 AND lam = lam_prev);
            lam_prev := lam;
            outlier := app.cv_screen(t, x, y, r, lam, v0var, q0, s_w, gate);
            EXIT WHEN NOT true = ANY (outlier);
            k := 0;
            FOR j IN 1 .. nn LOOP
                CONTINUE WHEN outlier[j];
                k := k + 1;
                gi[k] := gi[j]; x[k] := x[j]; y[k] := y[j]; t[k] := t[j]; r[k] := r[j];
            END LOOP;
            res.dropped_impossible_speed := res.dropped_impossible_speed + nn - k;
            nn := k;
            gi := gi[1:nn]; x := x[1:nn]; y := y[1:nn]; t := t[1:nn]; r := r[1:nn];
            lam := app.cv_noise_scale(t, x, y, r, lambdas, lam, v0var, q0, s_w);
        END LOOP;
        sg_fixes[seg] := nn;
        sg_lambda[seg] := lam;
        SELECT c.sx, c.sy, c.svx, c.svy INTO sx, sy, svx, svy
          FROM app.cv_smooth(t, x, y, r, lam, v0var, q0, s_w, true) c;

        -- 4. halts: stays and pauses
        still := '{}';
        FOR h IN 1 .. nn LOOP
            still[h] := svx[h] ^ 2 + svy[h] ^ 2 < v_still ^ 2;
        END LOOP;
        om := 0;
        last_o := 0;
        i := 1;
        WHILE i <= nn LOOP
            IF NOT still[i] THEN
                om := om + 1; o_x[om] := sx[i]; o_y[om] := sy[i]; o_j[om] := i; o_stay[om] := NULL;
                i := i + 1;
                CONTINUE;
            END IF;
            -- still from i: follow while within the radius of the still fixes' centroid
            cx := sx[i]; cy := sy[i]; cnt := 1; last_slow := i;
            k := i + 1;
            WHILE k <= nn AND (sx[k] - cx) ^ 2 + (sy[k] - cy) ^ 2 <= rad2 LOOP
                IF still[k] THEN
                    last_slow := k;
                    cnt := cnt + 1;
                    cx := cx + (sx[k] - cx) / cnt;
                    cy := cy + (sy[k] - cy) / cnt;
                END IF;
                k := k + 1;
            END LOOP;
            IF last_slow = i OR (sx[last_slow] - sx[i]) ^ 2 + (sy[last_slow] - sy[i]) ^ 2
                                >= (v_still * (t[last_slow] - t[i])) ^ 2 THEN
                -- no halt (from its first still fix to its last it went faster than still): moving fixes, the
                -- scan going on after the last still one
                FOR h IN i .. last_slow LOOP
                    om := om + 1; o_x[om] := sx[h]; o_y[om] := sy[h]; o_j[om] := h; o_stay[om] := NULL;
                END LOOP;
                i := last_slow + 1;
                CONTINUE;
            END IF;
            IF t[last_slow] - t[i] < p_cfg.stay_min_seconds THEN
                -- a pause, too short to be a stay: one point at its still fixes' centroid, the others jitter
                om := om + 1; o_x[om] := cx; o_y[om] := cy; o_j[om] := i; o_stay[om] := NULL;
                res.dropped_jitter := res.dropped_jitter + last_slow - i;
                i := last_slow + 1;
                CONTINUE;
            END IF;
            -- A stay. It goes on while the phone is within its reach of the centre, twice its fixes' RMS
            -- accuracy (a drifting error moves a still phone's positions slowly and boundedly), and ends at
            -- its last fix within the radius: the fixes after it, beyond the radius, are the departure.
            reach2 := 0;
            FOR h IN i .. last_slow LOOP
                reach2 := reach2 + r[h] / (last_slow - i + 1);
            END LOOP;
            reach2 := greatest(rad2, reach_k ^ 2 * reach2);
            last_in := k - 1;
            WHILE k <= nn AND (sx[k] - cx) ^ 2 + (sy[k] - cy) ^ 2 <= reach2 LOOP
                IF (sx[k] - cx) ^ 2 + (sy[k] - cy) ^ 2 <= rad2 THEN
                    last_in := k;
                END IF;
                IF still[k] THEN
                    cnt := cnt + 1;
                    cx := cx + (sx[k] - cx) / cnt;
                    cy := cy + (sy[k] - cy) / cnt;
                END IF;
                k := k + 1;
            END LOOP;
            k := last_in + 1;
            -- From the arrival within the radius (fixes already emitted, taken back) to k - 1.
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
            st_start[nstay] := f_at[gi[j]];
            st_end[nstay] := f_at[gi[k - 1]];
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
            tr_at[np] := f_at[gi[o_j[h]]];
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
                                    'still_speed_mps', v_still, 'noise_scale_grid', to_jsonb(lambdas),
                                    'innovation_gate', gate, 'stay_reach_accuracies', reach_k);
    RETURN res;
END
$$;
