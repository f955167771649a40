-- Analyst logins made by `fieldtrack analyst grant` stay (roles are cluster-wide); they lose their reach.
DROP SCHEMA IF EXISTS analytics CASCADE;
REVOKE SELECT ON active_users, org_daily_metrics, org_dashboard_snapshot FROM fieldtrack_analyst;
DROP POLICY IF EXISTS pending_expenses_analyst ON pending_expenses;
DROP POLICY IF EXISTS employee_daily_metrics_analyst ON employee_daily_metrics;
DROP POLICY IF EXISTS employee_metrics_snapshot_analyst ON employee_metrics_snapshot;
DROP POLICY IF EXISTS employee_latest_sessions_analyst ON employee_latest_sessions;
DROP POLICY IF EXISTS employee_last_state_analyst ON employee_last_state;
DROP POLICY IF EXISTS employees_analyst ON employees;
DROP POLICY IF EXISTS organizations_analyst ON organizations;
REVOKE SELECT ON organizations, employee_last_state, employee_latest_sessions, employee_metrics_snapshot,
    employee_daily_metrics, pending_expenses FROM fieldtrack_analyst;
REVOKE SELECT (organization_id, id, name, employee_code, employee_number, is_active, last_activity_at, created_at)
    ON employees FROM fieldtrack_analyst;
DROP FUNCTION IF EXISTS app.analyst_org();
DROP TABLE IF EXISTS app.analyst_logins;
DROP VIEW IF EXISTS app.leaderboard_days, app.leaderboard_names;
