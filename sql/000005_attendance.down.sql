-- 000005 attendance, reversed.
DROP VIEW IF EXISTS app.latest_sessions, app.sessions;
DROP TABLE IF EXISTS attendance_sessions;
DROP FUNCTION IF EXISTS app.attendance_sessions_events();
DROP FUNCTION IF EXISTS app.attendance_sessions_before_write();
DROP FUNCTION IF EXISTS app.attendance_sessions_stored_closed();
