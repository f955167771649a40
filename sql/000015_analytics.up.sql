-- 000015 analytics: the leaderboard every caller may see, and analysts on SQL.
--
-- Why:
-- * The leaderboard shows every employee of the organization to any of its callers (employees
--   included), while an employee may read only its own rows: app.leaderboard_days and
--   app.leaderboard_names are views of the owner's that answer the caller's organization only
--   (app.org_id()).
-- * Analysts query schema analytics: views (as the invoker) over the snapshots and aggregates, with the
--   activity status computed at read. An analyst is a login role that is a member of
--   fieldtrack_analyst and bound to one organization in app.analyst_logins (`fieldtrack analyst grant`).
--   Row-level security keys the analyst's rows on app.analyst_org(): the organization of session_user,
--   the role that logged in. Neither set_config('app.org_id', ...) nor SET ROLE changes session_user,
--   so an analyst cannot widen what it sees; it can read, nothing else, and no secret (webhook secrets,
--   key and password hashes, receipts) is granted to it.
-- Locks: creates objects and policies only.

-- The caller's organization's employees' days, and their names and codes (app.org_id() only). Views
-- of the owner's, not the invoker's: the organization filter is their own, not the tables' policies.
-- Days are summed first and named after (a thousand probes, not one per day).
CREATE VIEW app.leaderboard_days AS
SELECT m.organization_id, m.employee_id, m.date, m.sessions, m.distance_km, m.duration_seconds, m.expenses_amount
  FROM public.employee_daily_metrics m
 WHERE m.organization_id = (SELECT app.org_id()); -- read once per statement, not per row
CREATE VIEW app.leaderboard_names AS
SELECT e.organization_id, e.id AS employee_id, e.employee_code, e.name AS employee_name
  FROM public.employees e
 WHERE e.organization_id = (SELECT app.org_id());
GRANT SELECT ON app.leaderboard_days, app.leaderboard_names TO fieldtrack_api;

-- analysts -------------------------------------------------------------------------------------------------

CREATE TABLE app.analyst_logins (
    role_name       name        PRIMARY KEY,
    organization_id uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The organization of the login this session was opened with (NULL: none, so no rows).
CREATE FUNCTION app.analyst_org() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$ SELECT a.organization_id FROM app.analyst_logins a WHERE a.role_name = session_user $$;
REVOKE ALL ON FUNCTION app.analyst_org() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.analyst_org() TO fieldtrack_analyst;

CREATE SCHEMA analytics;
COMMENT ON SCHEMA analytics IS 'FieldTrack snapshots and aggregates for analysts (read-only, one organization per login)';
GRANT USAGE ON SCHEMA analytics TO fieldtrack_analyst;

-- What the views read, and only that, with the analyst's own policies.
GRANT SELECT ON organizations, employee_last_state, employee_latest_sessions, employee_metrics_snapshot,
    employee_daily_metrics, pending_expenses TO fieldtrack_analyst;
GRANT SELECT (organization_id, id, name, employee_code, employee_number, is_active, last_activity_at, created_at)
    ON employees TO fieldtrack_analyst;

CREATE POLICY organizations_analyst ON organizations FOR SELECT TO fieldtrack_analyst
    USING (id = (SELECT app.analyst_org()));
CREATE POLICY employees_analyst ON employees FOR SELECT TO fieldtrack_analyst
    USING (organization_id = (SELECT app.analyst_org()));
CREATE POLICY employee_last_state_analyst ON employee_last_state FOR SELECT TO fieldtrack_analyst
    USING (organization_id = (SELECT app.analyst_org()));
CREATE POLICY employee_latest_sessions_analyst ON employee_latest_sessions FOR SELECT TO fieldtrack_analyst
    USING (organization_id = (SELECT app.analyst_org()));
CREATE POLICY employee_metrics_snapshot_analyst ON employee_metrics_snapshot FOR SELECT TO fieldtrack_analyst
    USING (organization_id = (SELECT app.analyst_org()));
CREATE POLICY employee_daily_metrics_analyst ON employee_daily_metrics FOR SELECT TO fieldtrack_analyst
    USING (organization_id = (SELECT app.analyst_org()));
CREATE POLICY pending_expenses_analyst ON pending_expenses FOR SELECT TO fieldtrack_analyst
    USING (organization_id = (SELECT app.analyst_org()));

CREATE VIEW analytics.employees WITH (security_invoker = true) AS
SELECT e.organization_id, e.id AS employee_id, e.name, e.employee_code, e.employee_number, e.is_active,
       e.last_activity_at, e.created_at
  FROM public.employees e;

CREATE VIEW analytics.employee_last_state WITH (security_invoker = true) AS
SELECT l.organization_id, l.employee_id, l.last_session_id, l.is_checked_in, l.last_check_in_at,
       l.last_check_out_at, l.last_latitude, l.last_longitude, l.last_location_at,
       CASE WHEN l.last_session_id IS NULL THEN 'INACTIVE'
            WHEN l.is_checked_in THEN 'ACTIVE'
            ELSE app.activity_status(l.last_check_out_at) END AS activity_status,
       l.updated_at
  FROM public.employee_last_state l;

CREATE VIEW analytics.active_users WITH (security_invoker = true) AS
SELECT l.organization_id, l.employee_id, l.last_session_id AS session_id, l.last_check_in_at AS checked_in_at,
       greatest(l.last_check_in_at, l.last_location_at) AS last_seen_at
  FROM public.employee_last_state l
 WHERE l.is_checked_in;

CREATE VIEW analytics.employee_latest_sessions WITH (security_invoker = true) AS
SELECT s.organization_id, s.employee_id, s.session_id, s.latest_checkin, s.latest_checkout, s.total_distance_km,
       s.total_duration_seconds, s.distance_recalculation_status, app.activity_status(s.latest_checkout) AS status,
       s.updated_at
  FROM public.employee_latest_sessions s;

CREATE VIEW analytics.employee_metrics_snapshot WITH (security_invoker = true) AS
SELECT m.organization_id, m.employee_id, m.total_sessions, m.total_hours, m.total_distance, m.total_expenses,
       m.last_active_at, m.updated_at
  FROM public.employee_metrics_snapshot m;

CREATE VIEW analytics.employee_daily_metrics WITH (security_invoker = true) AS
SELECT d.organization_id, d.employee_id, d.date, d.sessions, d.distance_km, d.duration_seconds, d.expenses_count,
       d.expenses_amount, d.updated_at
  FROM public.employee_daily_metrics d;

CREATE VIEW analytics.org_daily_metrics WITH (security_invoker = true) AS
SELECT * FROM public.org_daily_metrics;

CREATE VIEW analytics.org_dashboard_snapshot WITH (security_invoker = true) AS
SELECT * FROM public.org_dashboard_snapshot;

CREATE VIEW analytics.pending_expenses WITH (security_invoker = true) AS
SELECT p.organization_id, p.id AS expense_id, p.employee_id, p.amount, p.description, p.submitted_at
  FROM public.pending_expenses p;

-- The public views the analytics ones read.
GRANT SELECT ON active_users, org_daily_metrics, org_dashboard_snapshot TO fieldtrack_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO fieldtrack_analyst;
-- app.activity_status is read by the views (PUBLIC may execute it already; said for the record).
GRANT EXECUTE ON FUNCTION app.activity_status(timestamptz) TO fieldtrack_analyst;
