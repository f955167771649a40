-- 000028 reversed: the functions go. A database already distributed stays distributed (undistribute_table
-- by hand, table by table, children first).
DROP FUNCTION app.citus_distribute(integer);
DROP FUNCTION app.session_summary_employee();
DROP FUNCTION app.citus_share_claims();
DROP FUNCTION app.citus_propagate();
