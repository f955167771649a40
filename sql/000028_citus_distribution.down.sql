-- 000028 reversed: the functions go. A distributed database cannot be taken back this way (its tables
-- would have to be undistributed by hand, children first, and the binary calls app.citus_share_claims on
-- every request there): refused.
DO $$
DECLARE
    n bigint := 0;
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_partition' INTO n;
    END IF;
    IF n > 0 THEN
        RAISE EXCEPTION 'this database is distributed by Citus; 000028 cannot be reversed (undistribute_table first)';
    END IF;
END
$$;
DROP FUNCTION app.citus_distribute(integer);
DROP FUNCTION app.session_summary_employee();
DROP FUNCTION app.citus_share_claims();
DROP FUNCTION app.citus_propagate();
DROP FUNCTION app.citus_check_logins();
DROP FUNCTION app.org_dashboard_figures(uuid, text);
