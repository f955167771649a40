-- 000010 admin monitoring sessions, reversed.
DROP TABLE IF EXISTS admin_sessions;
