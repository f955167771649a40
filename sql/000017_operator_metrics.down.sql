-- 000017 reversed.
DO $$
BEGIN
    IF to_regclass('cron.job_run_details') IS NOT NULL AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_owner') THEN
        REVOKE SELECT ON cron.job, cron.job_run_details FROM fieldtrack_owner;
        REVOKE USAGE ON SCHEMA cron FROM fieldtrack_owner;
    END IF;
END
$$;
DROP FUNCTION IF EXISTS app.operator_metrics();
