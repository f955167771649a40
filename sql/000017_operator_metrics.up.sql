-- 000017 what operators scrape from Postgres: snapshot drift found by the last reconciliation and the
-- pg_cron jobs' failures.
--
-- Why: /metrics (operators only) reads them through app.operator_metrics as the worker role, which sees
-- neither app.reconcile_runs nor pg_cron's tables. The function reads pg_cron's log with dynamic SQL, so
-- it exists (and answers no cron rows) in databases without pg_cron too.
-- Locks: creates a function; grants.

CREATE FUNCTION app.operator_metrics()
    RETURNS TABLE (name text, label text, value double precision)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    v_last timestamptz := (SELECT max(r.run_at) FROM app.reconcile_runs r);
BEGIN
    -- The rows the last run repaired, per snapshot table (every organization); and its failures.
    RETURN QUERY
        SELECT 'snapshot_drift_rows', t.table_name,
               coalesce(sum(r.rows_inserted + r.rows_updated + r.rows_deleted), 0)::double precision
          FROM app.snapshot_tables t
          LEFT JOIN app.reconcile_runs r
                 ON r.run_at = v_last AND r.table_name = t.table_name AND r.organization_id IS NOT NULL
         GROUP BY t.table_name;
    RETURN QUERY
        SELECT 'reconcile_errors', '', count(*)::double precision
          FROM app.reconcile_runs r WHERE r.run_at = v_last AND r.error IS NOT NULL;
    RETURN QUERY SELECT 'reconcile_last_run', '', coalesce(extract(epoch FROM v_last), 0)::double precision;
    IF to_regclass('cron.job_run_details') IS NOT NULL THEN
        RETURN QUERY EXECUTE $q$
            SELECT 'cron_failures_24h'::text, j.jobname::text,
                   count(d.runid) FILTER (WHERE d.status = 'failed' AND d.end_time > now() - interval '24 hours')::double precision
              FROM cron.job j LEFT JOIN cron.job_run_details d ON d.jobid = j.jobid
             WHERE j.jobname IS NOT NULL
             GROUP BY j.jobname$q$;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION app.operator_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.operator_metrics() TO fieldtrack_worker;

-- Owned by fieldtrack_owner as every definer function (000016), which may then read pg_cron's log.
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_owner') THEN
        ALTER FUNCTION app.operator_metrics() OWNER TO fieldtrack_owner;
        IF to_regclass('cron.job_run_details') IS NOT NULL THEN
            GRANT USAGE ON SCHEMA cron TO fieldtrack_owner;
            GRANT SELECT ON cron.job, cron.job_run_details TO fieldtrack_owner;
        END IF;
    END IF;
END
$$;
