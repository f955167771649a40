-- 000014 snapshots: the read models admin pages and analysts read, kept exact by triggers.
--
-- Why:
-- * An admin read must cost the same with ten thousand GPS fixes or ten million, so it reads rows kept by
--   the writes themselves, in the same transaction: a check-in, a check-out (forced or by deactivation),
--   a recalculation, late fixes, an expense filed or reviewed all update the snapshot rows they change.
-- * One row per employee (or per employee and day), never one per organization: concurrent writers of
--   one organization never wait for each other on a snapshot row. Organization figures
--   (org_daily_metrics, org_dashboard_snapshot) are views summing those rows at read, which costs what
--   the organization's employee count costs, whatever the GPS volume.
-- * Facts are stored, states that depend on the clock are computed at read: the activity status
--   (ACTIVE: checked in; RECENT: checked out within 24 h; INACTIVE) is app.activity_status of the stored
--   check-out time, never a stored status an hourly job must age.
-- * Sums (sessions, distance, duration, expenses) are kept by adding what a change adds and removing what
--   it removes (commutative, so concurrent writers need no lock beyond the row's); the latest session and
--   the last state are recomputed for the employee, after locking its employee_last_state row so two
--   writers of one employee cannot store each other's stale view.
-- * A GPS upload writes one snapshot row: the employee's last fix (employee_last_state, through
--   app.note_fix), in the statement trigger that already runs once per insert. active_users is a view of
--   the checked-in employees' rows.
-- * An open session's distance so far is measured every minute by pg_cron (app.measure_open_sessions,
--   with app.session_distance, the function of the final distance) for the sessions that received fixes
--   since their last measure; ingest pays nothing for it.
-- * reconcile_snapshot_tables() recomputes every snapshot from its sources (app.expected_* functions,
--   the definitions), per organization, and repairs only the rows that differ, each only if nobody
--   changed it meanwhile (its xmin is the one compared): safe beside traffic, no table locks.
-- * Days are the organization's: organizations.time_zone (default UTC). Changing it re-dates the
--   organization's daily rows.
-- Locks: adds a column to organizations (no rewrite) and triggers on employees, attendance_sessions,
-- expenses and organizations (writes to them wait until the migration commits); creates the rest. The
-- snapshots of existing rows are built after it (see the end).

-- time zones -------------------------------------------------------------------------------------------------

ALTER TABLE organizations ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

CREATE FUNCTION app.organizations_time_zone() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- A name of the time zone database, not a POSIX string ('+05:30' would mean UTC-05:30).
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names WHERE name = NEW.time_zone) THEN
        RAISE EXCEPTION 'time_zone must be an IANA time zone such as Europe/Paris, got %', NEW.time_zone
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER organizations_time_zone BEFORE INSERT OR UPDATE OF time_zone ON organizations
    FOR EACH ROW EXECUTE FUNCTION app.organizations_time_zone();

-- The organization's day of an instant.
CREATE FUNCTION app.org_date(p_org uuid, p_at timestamptz) RETURNS date
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$ SELECT (p_at AT TIME ZONE o.time_zone)::date FROM public.organizations o WHERE o.id = p_org $$;

-- tables -------------------------------------------------------------------------------------------------------

-- Every employee's state: its latest session (checked in when it is open), its latest check-in and
-- check-out, and its last fix. last_upload_at (when fixes last arrived, server time) is bookkeeping of
-- the open-session measure, not part of the snapshot.
CREATE TABLE employee_last_state (
    organization_id   uuid             NOT NULL,
    employee_id       uuid             NOT NULL,
    last_session_id   uuid,
    is_checked_in     boolean          NOT NULL DEFAULT false,
    last_check_in_at  timestamptz,
    last_check_out_at timestamptz,
    last_latitude     double precision,
    last_longitude    double precision,
    last_location_at  timestamptz,
    last_upload_at    timestamptz,
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, employee_id),
    FOREIGN KEY (organization_id, employee_id) REFERENCES employees (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX employee_last_state_checked_in ON employee_last_state (organization_id) WHERE is_checked_in;

-- Every employee's latest session (by check-in), for employees that have one.
CREATE TABLE employee_latest_sessions (
    organization_id               uuid             NOT NULL,
    employee_id                   uuid             NOT NULL,
    session_id                    uuid             NOT NULL,
    latest_checkin                timestamptz      NOT NULL,
    latest_checkout               timestamptz,
    total_distance_km             double precision,
    total_duration_seconds        integer,
    distance_recalculation_status text             NOT NULL,
    session_updated_at            timestamptz      NOT NULL,
    updated_at                    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, employee_id),
    FOREIGN KEY (organization_id, employee_id) REFERENCES employees (organization_id, id) ON DELETE CASCADE
);

-- Every employee's totals of all time: sessions, hours and distance of closed sessions, approved
-- expenses, and the time of its latest check-in or check-out.
CREATE TABLE employee_metrics_snapshot (
    organization_id        uuid          NOT NULL,
    employee_id            uuid          NOT NULL,
    total_sessions         integer       NOT NULL DEFAULT 0,
    total_duration_seconds bigint        NOT NULL DEFAULT 0,
    total_hours            numeric(14,2) GENERATED ALWAYS AS (round(total_duration_seconds / 3600.0, 2)) STORED,
    total_distance         numeric(14,3) NOT NULL DEFAULT 0,
    total_expenses         numeric(14,2) NOT NULL DEFAULT 0,
    last_active_at         timestamptz,
    updated_at             timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, employee_id),
    FOREIGN KEY (organization_id, employee_id) REFERENCES employees (organization_id, id) ON DELETE CASCADE
);

-- Per employee and day of the organization: the sessions checked in that day (open ones included), the
-- distance and duration of those of them that are closed, and the expenses filed that day (every
-- status). A session crossing midnight counts on its check-in day. Days with nothing have no row.
CREATE TABLE employee_daily_metrics (
    organization_id  uuid          NOT NULL,
    employee_id      uuid          NOT NULL,
    date             date          NOT NULL,
    sessions         integer       NOT NULL DEFAULT 0,
    distance_km      numeric(14,3) NOT NULL DEFAULT 0,
    duration_seconds bigint        NOT NULL DEFAULT 0,
    expenses_count   integer       NOT NULL DEFAULT 0,
    expenses_amount  numeric(14,2) NOT NULL DEFAULT 0,
    updated_at       timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, employee_id, date),
    FOREIGN KEY (organization_id, employee_id) REFERENCES employees (organization_id, id) ON DELETE CASCADE
);
-- Covering: a range of days is read from the index alone (the rows of one day lie on as many heap pages
-- as there are employees).
CREATE INDEX employee_daily_metrics_org_date ON employee_daily_metrics (organization_id, date)
    INCLUDE (employee_id, sessions, distance_km, duration_seconds, expenses_amount);

-- The expenses waiting for review.
CREATE TABLE pending_expenses (
    organization_id uuid          NOT NULL,
    id              uuid          NOT NULL,
    employee_id     uuid          NOT NULL,
    amount          numeric(12,2) NOT NULL,
    description     text          NOT NULL,
    submitted_at    timestamptz   NOT NULL,
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, id) REFERENCES expenses (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX pending_expenses_org_submitted ON pending_expenses (organization_id, submitted_at DESC);

-- the definitions: each snapshot as its sources say it should be ------------------------------------------

-- A session's contribution to its employee's sums: it counts once; its distance and duration once closed.
CREATE FUNCTION app.expected_employee_last_state(p_org uuid) RETURNS SETOF employee_last_state
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
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
    $$;

CREATE FUNCTION app.expected_employee_latest_sessions(p_org uuid) RETURNS SETOF employee_latest_sessions
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
        SELECT e.organization_id, e.id, s.id, s.checkin_at, s.checkout_at, s.total_distance_km,
               s.total_duration_seconds, s.distance_recalculation_status, s.updated_at, now()
          FROM public.employees e
          CROSS JOIN LATERAL (
              SELECT a.* FROM public.attendance_sessions a
               WHERE a.organization_id = e.organization_id AND a.employee_id = e.id
               ORDER BY a.checkin_at DESC, a.id DESC LIMIT 1) s
         WHERE e.organization_id = p_org
    $$;

CREATE FUNCTION app.expected_employee_metrics_snapshot(p_org uuid) RETURNS SETOF employee_metrics_snapshot
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
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
    $$;

CREATE FUNCTION app.expected_employee_daily_metrics(p_org uuid) RETURNS SETOF employee_daily_metrics
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
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
    $$;

CREATE FUNCTION app.expected_pending_expenses(p_org uuid) RETURNS SETOF pending_expenses
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
        SELECT x.organization_id, x.id, x.employee_id, x.amount, x.description, x.submitted_at, now()
          FROM public.expenses x WHERE x.organization_id = p_org AND x.status = 'PENDING'
    $$;

-- the writers ----------------------------------------------------------------------------------------------

-- app.refresh_employee_sessions recomputes an employee's session-derived snapshot rows (its state but the
-- last fix, and its latest session) from its sessions: a few index probes. It locks the employee's state
-- row first, so a concurrent writer of the same employee finishes before this one reads.
CREATE FUNCTION app.refresh_employee_sessions(p_org uuid, p_employee uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
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
           session_updated_at = excluded.session_updated_at, updated_at = now();
END
$$;
REVOKE ALL ON FUNCTION app.refresh_employee_sessions(uuid, uuid) FROM PUBLIC;

-- app.add_daily adds to an employee's day (a negative change removes; a day left with nothing goes).
CREATE FUNCTION app.add_daily(p_org uuid, p_employee uuid, p_date date, p_sessions integer, p_km numeric,
                              p_seconds bigint, p_expenses integer, p_amount numeric) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
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
           expenses_amount = d.expenses_amount + excluded.expenses_amount, updated_at = now();
END
$$;
REVOKE ALL ON FUNCTION app.add_daily(uuid, uuid, date, integer, numeric, bigint, integer, numeric) FROM PUBLIC;

-- app.add_metrics adds to an employee's totals.
CREATE FUNCTION app.add_metrics(p_org uuid, p_employee uuid, p_sessions integer, p_seconds bigint, p_km numeric,
                                p_approved numeric) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
        UPDATE public.employee_metrics_snapshot m
           SET total_sessions = m.total_sessions + p_sessions,
               total_duration_seconds = m.total_duration_seconds + p_seconds,
               total_distance = m.total_distance + p_km, total_expenses = m.total_expenses + p_approved,
               updated_at = now()
         WHERE m.organization_id = p_org AND m.employee_id = p_employee
           AND (p_sessions, p_seconds, p_km, p_approved) IS DISTINCT FROM (0, 0::bigint, 0::numeric, 0::numeric)
    $$;
REVOKE ALL ON FUNCTION app.add_metrics(uuid, uuid, integer, bigint, numeric, numeric) FROM PUBLIC;

-- A new employee: its state and its totals (zero), so every employee has both rows.
CREATE FUNCTION app.employees_snapshots() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
BEGIN
    INSERT INTO public.employee_last_state (organization_id, employee_id) VALUES (NEW.organization_id, NEW.id)
    ON CONFLICT DO NOTHING;
    INSERT INTO public.employee_metrics_snapshot (organization_id, employee_id) VALUES (NEW.organization_id, NEW.id)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER employees_snapshots AFTER INSERT ON employees
    FOR EACH ROW EXECUTE FUNCTION app.employees_snapshots();

-- A session written: its employee's latest session and state, and what it adds to the sums (the new row's
-- contribution minus the old row's).
CREATE FUNCTION app.attendance_sessions_snapshots() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    r        public.attendance_sessions; -- organization, employee and check-in never change
    sessions integer := 0;
    km       numeric := 0;
    seconds  bigint := 0;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    -- A session deleted with its employee (or organization): its snapshot rows are going too.
    IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT FROM public.employees e
                                         WHERE e.organization_id = r.organization_id AND e.id = r.employee_id) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN -- what the old row added goes
        sessions := -1;
        IF OLD.checkout_at IS NOT NULL THEN
            km := -coalesce(OLD.total_distance_km::numeric(14,3), 0);
            seconds := -coalesce(OLD.total_duration_seconds, 0);
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN -- what the new row adds
        sessions := sessions + 1;
        IF NEW.checkout_at IS NOT NULL THEN
            km := km + coalesce(NEW.total_distance_km::numeric(14,3), 0);
            seconds := seconds + coalesce(NEW.total_duration_seconds, 0);
        END IF;
    END IF;
    PERFORM app.add_daily(r.organization_id, r.employee_id, app.org_date(r.organization_id, r.checkin_at),
                          sessions, km, seconds, 0, 0);
    PERFORM app.add_metrics(r.organization_id, r.employee_id, sessions, seconds, km, 0);
    PERFORM app.refresh_employee_sessions(r.organization_id, r.employee_id);
    IF TG_OP = 'DELETE' THEN -- its fixes went with it: the last fix is the newest of those left
        UPDATE public.employee_last_state l
           SET (last_latitude, last_longitude, last_location_at) = (
                   SELECT f.latitude, f.longitude, f.recorded_at
                     FROM public.attendance_sessions a
                     CROSS JOIN LATERAL (
                         SELECT p.latitude, p.longitude, p.recorded_at FROM public.gps_locations p
                          WHERE p.organization_id = a.organization_id AND p.session_id = a.id
                          ORDER BY p.recorded_at DESC LIMIT 1) f
                    WHERE a.organization_id = l.organization_id AND a.employee_id = l.employee_id
                    ORDER BY f.recorded_at DESC LIMIT 1),
               updated_at = now()
         WHERE l.organization_id = r.organization_id AND l.employee_id = r.employee_id;
    END IF;
    -- last_active_at: the latest check-in or check-out, as the refreshed state has them.
    UPDATE public.employee_metrics_snapshot m
       SET last_active_at = greatest(l.last_check_in_at, l.last_check_out_at), updated_at = now()
      FROM public.employee_last_state l
     WHERE m.organization_id = r.organization_id AND m.employee_id = r.employee_id
       AND l.organization_id = m.organization_id AND l.employee_id = m.employee_id
       AND m.last_active_at IS DISTINCT FROM greatest(l.last_check_in_at, l.last_check_out_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER attendance_sessions_snapshots
    AFTER INSERT OR DELETE OR UPDATE OF checkout_at, total_distance_km, total_duration_seconds,
        distance_recalculation_status ON attendance_sessions
    FOR EACH ROW EXECUTE FUNCTION app.attendance_sessions_snapshots();

-- An expense written: the pending list, its day's expenses and its employee's approved total.
CREATE FUNCTION app.expenses_snapshots() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
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
                   description = excluded.description, submitted_at = excluded.submitted_at, updated_at = now();
        ELSE
            DELETE FROM public.pending_expenses p WHERE p.organization_id = NEW.organization_id AND p.id = NEW.id;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER expenses_snapshots
    AFTER INSERT OR DELETE OR UPDATE OF status, amount, submitted_at, description ON expenses
    FOR EACH ROW EXECUTE FUNCTION app.expenses_snapshots();

-- app.note_fix records an employee's fix as its last one when it is newer, and when fixes arrived. As
-- the owner (no policies to evaluate on the ingest path; the API role writes no snapshot row).
CREATE FUNCTION app.note_fix(p_org uuid, p_employee uuid, p_lat double precision, p_lon double precision,
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
REVOKE ALL ON FUNCTION app.note_fix(uuid, uuid, double precision, double precision, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.note_fix(uuid, uuid, double precision, double precision, timestamptz) TO fieldtrack_api;

-- Fixes: as before, a session already closed is recalculated; then the employee's last fix (when the
-- statement holds a newer one) and the time they arrived, one update per session of the statement.
CREATE OR REPLACE FUNCTION app.gps_locations_after_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    s record;
BEGIN
    -- Distinct sessions first (with the newest fix of each), then primary-key probes: a join would be
    -- planned once for a one-row insert and then scan the organization's sessions for every fix of a batch.
    FOR s IN SELECT DISTINCT ON (n.organization_id, n.session_id)
                    n.organization_id, n.session_id, n.employee_id, n.latitude, n.longitude, n.recorded_at
               FROM new_points n
              ORDER BY n.organization_id, n.session_id, n.recorded_at DESC LOOP
        -- 1. A closed session is recalculated. That locks the session, then (through its snapshots'
        --    trigger) the employee's rows, in the order every writer of an employee takes them: before
        --    this statement locks the employee's state below.
        IF EXISTS (SELECT FROM public.attendance_sessions a
                    WHERE a.organization_id = s.organization_id AND a.id = s.session_id
                      AND a.checkout_at IS NOT NULL) THEN
            PERFORM app.recalculate_session(s.organization_id, s.session_id);
        END IF;
        -- 2. The employee's last fix (when this one is newer) and when fixes arrived. (Every SET expression
        --    sees the row as it was.) The API's statements hold one session; an import of several sessions
        --    of one employee in one statement holds the employee's state while it goes on.
        PERFORM app.note_fix(s.organization_id, s.employee_id, s.latitude, s.longitude, s.recorded_at);
    END LOOP;
    RETURN NULL;
END
$$;

-- An organization's new time zone re-dates its days.
CREATE FUNCTION app.organizations_redate() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
BEGIN
    -- (A session or expense written concurrently under the old zone may land on its old day until the
    -- next reconciliation.)
    DELETE FROM public.employee_daily_metrics d WHERE d.organization_id = NEW.id;
    INSERT INTO public.employee_daily_metrics AS d SELECT * FROM app.expected_employee_daily_metrics(NEW.id)
    ON CONFLICT (organization_id, employee_id, date) DO UPDATE
       SET sessions = excluded.sessions, distance_km = excluded.distance_km,
           duration_seconds = excluded.duration_seconds, expenses_count = excluded.expenses_count,
           expenses_amount = excluded.expenses_amount, updated_at = now();
    RETURN NULL;
END
$$;

CREATE TRIGGER organizations_redate AFTER UPDATE OF time_zone ON organizations
    FOR EACH ROW WHEN (OLD.time_zone IS DISTINCT FROM NEW.time_zone)
    EXECUTE FUNCTION app.organizations_redate();

-- the open sessions' distance so far -----------------------------------------------------------------------

-- app.measure_open_sessions measures, with the function of the final distance, the open sessions that
-- received fixes since they were last measured, oldest measure first, at most p_limit of them and for
-- about p_budget; each in a transaction of its own (a check-out waits for one session's measure at most).
-- The distance goes to the session row (total_distance_km; the duration stays empty until check-out) and
-- from there to the snapshots; session_summaries keeps when it was measured.
-- (A procedure that commits cannot pin a search_path: every name is qualified.)
CREATE PROCEDURE app.measure_open_sessions(p_limit integer DEFAULT 1000, p_budget interval DEFAULT '45 seconds')
    LANGUAGE plpgsql
    AS $$
DECLARE
    started timestamptz := clock_timestamp();
    s record;
    r record;
    km double precision;
    seen timestamptz;
BEGIN
    FOR s IN SELECT a.organization_id, a.id
               FROM public.employee_last_state l
               JOIN public.attendance_sessions a
                 ON a.organization_id = l.organization_id AND a.id = l.last_session_id AND a.checkout_at IS NULL
               LEFT JOIN public.session_summaries ss ON ss.organization_id = a.organization_id AND ss.session_id = a.id
              WHERE l.is_checked_in AND l.last_upload_at > coalesce(ss.computed_at, '-infinity')
              ORDER BY ss.computed_at NULLS FIRST
              LIMIT p_limit LOOP
        EXIT WHEN clock_timestamp() - started > p_budget;
        -- The session, still open, locked against its check-out meanwhile (fixes still come in: their
        -- key-share lock does not conflict); the session first, as every writer of an employee locks.
        PERFORM FROM public.attendance_sessions a
          WHERE a.organization_id = s.organization_id AND a.id = s.id AND a.checkout_at IS NULL
          FOR NO KEY UPDATE;
        IF FOUND THEN
            -- What the measure sees was committed by now; an upload committing later but stamped just
            -- before counts as unseen (the margin), so it is measured next time.
            seen := clock_timestamp() - interval '2 seconds';
            BEGIN
                SELECT * INTO r FROM app.session_distance(s.organization_id, s.id);
                km := round((r.distance_m / 1000)::numeric, 3)::double precision;
                UPDATE public.attendance_sessions a SET total_distance_km = km
                 WHERE a.organization_id = s.organization_id AND a.id = s.id
                   AND a.total_distance_km IS DISTINCT FROM km;
                INSERT INTO public.session_summaries AS ss (organization_id, session_id, total_distance_km,
                                                            points_total, points_used, computed_at)
                VALUES (s.organization_id, s.id, km, r.points_total, r.points_used, seen)
                ON CONFLICT (organization_id, session_id) DO UPDATE
                   SET total_distance_km = excluded.total_distance_km, points_total = excluded.points_total,
                       points_used = excluded.points_used, last_error = NULL, computed_at = excluded.computed_at;
            EXCEPTION WHEN OTHERS THEN
                INSERT INTO public.session_summaries AS ss (organization_id, session_id, last_error, computed_at)
                VALUES (s.organization_id, s.id, SQLERRM, seen)
                ON CONFLICT (organization_id, session_id) DO UPDATE
                   SET last_error = excluded.last_error, computed_at = excluded.computed_at;
            END;
        END IF;
        COMMIT;
    END LOOP;
END
$$;
REVOKE ALL ON PROCEDURE app.measure_open_sessions(integer, interval) FROM PUBLIC;

-- reconciliation -------------------------------------------------------------------------------------------

-- The snapshots, their keys beside organization_id, and the columns that are bookkeeping, not snapshot.
-- position: the order repairs lock rows in, the writers' order (days, totals, state, latest session).
CREATE TABLE app.snapshot_tables (
    table_name  text    PRIMARY KEY,
    key_columns text[]  NOT NULL,
    ignored     text[]  NOT NULL DEFAULT '{updated_at}',
    position    integer NOT NULL UNIQUE
);
INSERT INTO app.snapshot_tables (table_name, key_columns, ignored, position) VALUES
    ('employee_daily_metrics', '{employee_id,date}', '{updated_at}', 1),
    ('employee_metrics_snapshot', '{employee_id}', '{updated_at,total_hours}', 2),
    ('employee_last_state', '{employee_id}', '{updated_at,last_upload_at}', 3),
    ('employee_latest_sessions', '{employee_id}', '{updated_at}', 4),
    ('pending_expenses', '{id}', '{updated_at}', 5);

-- app.reconcile_org compares one organization's snapshots with their definitions and, unless p_dry_run,
-- repairs what differs: missing rows are inserted, rows without a source deleted, differing rows
-- updated, each row only if it did not change since the comparison read it (a writer that changed it
-- meanwhile wrote the truth of a later moment). One statement per table: one snapshot of the sources
-- and the table alike.
CREATE FUNCTION app.reconcile_org(p_org uuid, p_dry_run boolean DEFAULT false)
    RETURNS TABLE (table_name text, rows_checked bigint, rows_inserted bigint, rows_updated bigint,
                   rows_deleted bigint)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    t app.snapshot_tables;
    cols text[];
    setcols text[];
    key_on text;
    key_del text;
    sql text;
BEGIN
    FOR t IN SELECT * FROM app.snapshot_tables ORDER BY position LOOP
        SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO cols
          FROM pg_attribute a
         WHERE a.attrelid = ('public.' || t.table_name)::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attgenerated = '';
        -- Repairs write the snapshot's columns, not its bookkeeping (updated_at is now()).
        setcols := ARRAY(SELECT c FROM unnest(cols) c
                          WHERE c <> ALL (t.key_columns) AND c <> 'organization_id' AND c <> ALL (t.ignored));
        SELECT string_agg(format('(w.r).%1$I = (h.r).%1$I', k), ' AND ') INTO key_on FROM unnest(t.key_columns) k;
        SELECT string_agg(format('x.%1$I = (d.hr).%1$I', k), ' AND ') INTO key_del FROM unnest(t.key_columns) k;
        -- The comparison: one snapshot of the definition and the table.
        sql := format($q$
            WITH w AS (SELECT w AS r, to_jsonb(w) - %2$L::text[] AS body FROM app.%3$I($1) w),
                 h AS (SELECT h AS r, to_jsonb(h) - %2$L::text[] AS body, h.xmin AS v
                         FROM public.%1$I h WHERE h.organization_id = $1),
                 d AS (SELECT w.r AS wr, h.r AS hr, h.v, w.body AS wb, h.body AS hb
                         FROM w FULL JOIN h ON %4$s),
                 drift AS (SELECT * FROM d WHERE wb IS DISTINCT FROM hb)
            $q$, t.table_name, t.ignored, 'expected_' || t.table_name, key_on);
        IF p_dry_run THEN -- no write in the statement: a reader (an admin's health check) may run it
            sql := sql || $q$
                SELECT (SELECT count(*) FROM d), count(*) FILTER (WHERE hb IS NULL),
                       count(*) FILTER (WHERE hb IS NOT NULL AND wb IS NOT NULL), count(*) FILTER (WHERE wb IS NULL)
                  FROM drift
                $q$;
        ELSE
            sql := sql || format($q$,
                 ins AS (INSERT INTO public.%1$I AS x (%2$s)
                         SELECT %3$s FROM drift d WHERE d.hb IS NULL
                         ON CONFLICT DO NOTHING RETURNING 1),
                 del AS (DELETE FROM public.%1$I x USING drift d
                          WHERE d.wb IS NULL AND x.organization_id = $1 AND %4$s AND x.xmin = d.v
                         RETURNING 1),
                 upd AS (UPDATE public.%1$I x SET (%5$s) = (SELECT %6$s), updated_at = now()
                           FROM drift d
                          WHERE d.wb IS NOT NULL AND d.hb IS NOT NULL
                            AND x.organization_id = $1 AND %4$s AND x.xmin = d.v
                         RETURNING 1)
                SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM ins), (SELECT count(*) FROM upd),
                       (SELECT count(*) FROM del)
                $q$,
                t.table_name,
                (SELECT string_agg(quote_ident(c), ', ') FROM unnest(cols) c),
                (SELECT string_agg(format('(d.wr).%I', c), ', ') FROM unnest(cols) c),
                key_del,
                (SELECT string_agg(quote_ident(c), ', ') FROM unnest(setcols) c),
                (SELECT string_agg(format('(d.wr).%I', c), ', ') FROM unnest(setcols) c));
        END IF;
        table_name := t.table_name;
        EXECUTE sql INTO rows_checked, rows_inserted, rows_updated, rows_deleted USING p_org;
        RETURN NEXT;
    END LOOP;
END
$$;

-- reconcile_snapshot_tables: every organization (or one), per snapshot table: rows checked, rows
-- inserted, updated and deleted (with dry_run: that would be), and how many organizations drifted. One
-- transaction; the pg_cron job (app.reconcile_all) commits per organization instead.
CREATE FUNCTION public.reconcile_snapshot_tables(dry_run boolean DEFAULT false, org uuid DEFAULT NULL)
    RETURNS TABLE (table_name text, rows_checked bigint, rows_inserted bigint, rows_updated bigint,
                   rows_deleted bigint, organizations_drifted bigint)
    LANGUAGE sql
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
        SELECT r.table_name, sum(r.rows_checked)::bigint, sum(r.rows_inserted)::bigint, sum(r.rows_updated)::bigint,
               sum(r.rows_deleted)::bigint,
               count(*) FILTER (WHERE r.rows_inserted + r.rows_updated + r.rows_deleted > 0)
          FROM public.organizations o
          CROSS JOIN LATERAL app.reconcile_org(o.id, dry_run) r
         WHERE org IS NULL OR o.id = org
         GROUP BY r.table_name
         ORDER BY r.table_name
    $$;

-- What each run of the job found and repaired, per organization and table when anything drifted, and
-- one summary row per run (organization_id NULL). Kept 30 days.
CREATE TABLE app.reconcile_runs (
    run_at          timestamptz NOT NULL,
    organization_id uuid,
    table_name      text        NOT NULL,
    rows_checked    bigint      NOT NULL,
    rows_inserted   bigint      NOT NULL,
    rows_updated    bigint      NOT NULL,
    rows_deleted    bigint      NOT NULL,
    seconds         double precision,
    error           text        -- the organization's reconciliation failed (rolled back): why
);
CREATE INDEX reconcile_runs_run_at ON app.reconcile_runs (run_at DESC);

-- app.reconcile_all: the 5-minute job. One organization per transaction (locks and the snapshot of each
-- are short), then the run's totals; and old run rows go.
CREATE PROCEDURE app.reconcile_all(p_org uuid DEFAULT NULL)
    LANGUAGE plpgsql
    AS $$
DECLARE
    run timestamptz := clock_timestamp();
    o uuid;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS reconcile_run_totals (LIKE app.reconcile_runs) ON COMMIT PRESERVE ROWS;
    TRUNCATE pg_temp.reconcile_run_totals;
    FOR o IN SELECT x.id FROM public.organizations x WHERE p_org IS NULL OR x.id = p_org ORDER BY x.id LOOP
        BEGIN -- one organization failing (a deadlock, an employee deleted meanwhile) does not stop the run
            INSERT INTO pg_temp.reconcile_run_totals
            SELECT run, o, r.table_name, r.rows_checked, r.rows_inserted, r.rows_updated, r.rows_deleted, NULL, NULL
              FROM app.reconcile_org(o, false) r;
            INSERT INTO app.reconcile_runs
            SELECT * FROM pg_temp.reconcile_run_totals t
             WHERE t.organization_id = o AND t.rows_inserted + t.rows_updated + t.rows_deleted > 0;
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO app.reconcile_runs (run_at, organization_id, table_name, rows_checked, rows_inserted,
                                            rows_updated, rows_deleted, error)
            VALUES (run, o, '(all)', 0, 0, 0, 0, SQLERRM);
        END;
        COMMIT;
    END LOOP;
    INSERT INTO app.reconcile_runs
    SELECT run, NULL, t.table_name, sum(t.rows_checked), sum(t.rows_inserted), sum(t.rows_updated),
           sum(t.rows_deleted), extract(epoch FROM clock_timestamp() - run), NULL
      FROM pg_temp.reconcile_run_totals t GROUP BY t.table_name;
    DELETE FROM app.reconcile_runs WHERE run_at < now() - interval '30 days';
    DROP TABLE pg_temp.reconcile_run_totals;
    COMMIT;
END
$$;
REVOKE ALL ON PROCEDURE app.reconcile_all(uuid) FROM PUBLIC;

-- What the latest run found for the caller's organization (app.org_id()), per table: rows that were
-- behind their sources (repaired since), or the error that stopped it. A view of the owner's: the API
-- cannot read the run log, only this organization's part of it.
CREATE VIEW app.snapshot_health AS
SELECT t.table_name, r.run_at AS checked_at,
       coalesce(d.rows_inserted + d.rows_updated + d.rows_deleted, 0)::bigint AS rows_behind,
       (SELECT e.error FROM app.reconcile_runs e
         WHERE e.run_at = r.run_at AND e.organization_id = (SELECT app.org_id()) AND e.error IS NOT NULL) AS error
  FROM app.snapshot_tables t
  LEFT JOIN (SELECT max(x.run_at) AS run_at FROM app.reconcile_runs x
              WHERE x.organization_id IS NULL OR x.organization_id = (SELECT app.org_id())) r ON true
  LEFT JOIN app.reconcile_runs d
         ON d.run_at = r.run_at AND d.organization_id = (SELECT app.org_id()) AND d.table_name = t.table_name;
GRANT SELECT ON app.snapshot_health TO fieldtrack_api;

-- views ----------------------------------------------------------------------------------------------------

-- The checked-in employees and their last heartbeat (the newest fix, or the check-in before any).
CREATE VIEW active_users WITH (security_invoker = true) AS
SELECT l.organization_id, l.employee_id, l.last_session_id AS session_id, l.last_check_in_at AS checked_in_at,
       greatest(l.last_check_in_at, l.last_location_at) AS last_seen_at
  FROM employee_last_state l
 WHERE l.is_checked_in;

-- An organization's days: the sum of its employees' days.
CREATE VIEW org_daily_metrics WITH (security_invoker = true) AS
SELECT d.organization_id, d.date, sum(d.sessions)::integer AS total_sessions,
       sum(d.distance_km)::numeric(14,3) AS total_distance_km, sum(d.duration_seconds)::bigint AS total_duration_seconds,
       sum(d.expenses_count)::integer AS total_expenses_count, sum(d.expenses_amount)::numeric(14,2) AS total_expenses_amount,
       count(*) FILTER (WHERE d.sessions > 0)::integer AS active_employees
  FROM employee_daily_metrics d
 GROUP BY d.organization_id, d.date;

-- An organization's dashboard figures now: its active employees by activity status, who checked in
-- today (its day), today's sessions and distance, and the expenses waiting for review.
CREATE VIEW org_dashboard_snapshot WITH (security_invoker = true) AS
SELECT o.id AS organization_id,
       coalesce(st.active, 0)::integer AS active_employee_count,
       coalesce(st.recent, 0)::integer AS recent_employee_count,
       coalesce(st.inactive, 0)::integer AS inactive_employee_count,
       coalesce(st.today, 0)::integer AS active_employees_today,
       coalesce(dm.sessions, 0)::integer AS today_session_count,
       coalesce(dm.km, 0)::numeric(14,3) AS today_distance_km,
       coalesce(pe.n, 0)::integer AS pending_expense_count,
       coalesce(pe.amount, 0)::numeric(14,2) AS pending_expense_amount,
       now() AS updated_at
  FROM organizations o
  CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE o.time_zone)::date AS day) t
  LEFT JOIN LATERAL (
      SELECT count(*) FILTER (WHERE l.is_checked_in) AS active,
             count(*) FILTER (WHERE NOT l.is_checked_in AND l.last_check_out_at >= now() - interval '24 hours') AS recent,
             count(*) FILTER (WHERE NOT l.is_checked_in
                              AND (l.last_check_out_at IS NULL OR l.last_check_out_at < now() - interval '24 hours')) AS inactive,
             count(*) FILTER (WHERE (l.last_check_in_at AT TIME ZONE o.time_zone)::date = t.day) AS today
        FROM employee_last_state l
        JOIN employees e ON e.organization_id = l.organization_id AND e.id = l.employee_id AND e.is_active
       WHERE l.organization_id = o.id) st ON true
  LEFT JOIN LATERAL (
      SELECT sum(d.sessions) AS sessions, sum(d.distance_km) AS km
        FROM employee_daily_metrics d WHERE d.organization_id = o.id AND d.date = t.day) dm ON true
  LEFT JOIN LATERAL (
      SELECT count(*) AS n, sum(p.amount) AS amount FROM pending_expenses p WHERE p.organization_id = o.id) pe ON true;

-- privileges and row-level security -------------------------------------------------------------------------
-- Admins read their organization's snapshots; an employee its own rows (its state, its latest session,
-- its totals and days). Only the triggers and functions of the owner write.

GRANT SELECT ON employee_last_state, employee_latest_sessions, employee_metrics_snapshot, employee_daily_metrics,
    pending_expenses, active_users, org_daily_metrics, org_dashboard_snapshot TO fieldtrack_api;


ALTER TABLE employee_last_state ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE employee_latest_sessions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE employee_metrics_snapshot ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE employee_daily_metrics ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE pending_expenses ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY employee_last_state_select ON employee_last_state FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY employee_latest_sessions_select ON employee_latest_sessions FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY employee_metrics_snapshot_select ON employee_metrics_snapshot FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY employee_daily_metrics_select ON employee_daily_metrics FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY pending_expenses_select ON pending_expenses FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');

-- fill from what exists -------------------------------------------------------------------------------------

-- Every employee's two rows here; the rest is built after the migration commits, one organization per
-- transaction (`fieldtrack migrate up` does it when it applies this file; so would the first 5-minute
-- run), so that no table stays locked while a large history is summed.
INSERT INTO employee_last_state (organization_id, employee_id) SELECT organization_id, id FROM employees;
INSERT INTO employee_metrics_snapshot (organization_id, employee_id) SELECT organization_id, id FROM employees;

-- jobs ----------------------------------------------------------------------------------------------------

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.schedule('fieldtrack-reconcile-snapshots', '*/5 * * * *', 'CALL app.reconcile_all()');
        PERFORM cron.schedule('fieldtrack-measure-open-sessions', '* * * * *', 'CALL app.measure_open_sessions()');
    END IF;
END
$$;
