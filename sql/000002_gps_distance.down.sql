-- 000002 GPS ingest and distance, reversed.
DROP TRIGGER IF EXISTS gps_locations_after_insert ON gps_locations;
DROP TRIGGER IF EXISTS attendance_sessions_after_closed_insert ON attendance_sessions;
DROP TRIGGER IF EXISTS attendance_sessions_after_checkout ON attendance_sessions;
DROP FUNCTION IF EXISTS app.record_location(uuid, double precision, double precision, double precision, timestamptz, integer);
DROP FUNCTION IF EXISTS app.locations_session(uuid, timestamptz, timestamptz, boolean);
DROP FUNCTION IF EXISTS app.record_locations(uuid, double precision[], double precision[], double precision[], timestamptz[], integer[]);
DROP FUNCTION IF EXISTS app.simplified_route_times(uuid, double precision);
DROP FUNCTION IF EXISTS app.gps_locations_after_insert();
DROP FUNCTION IF EXISTS app.attendance_sessions_after_checkout();
DROP FUNCTION IF EXISTS app.recalculate_session(uuid, uuid);
DROP FUNCTION IF EXISTS app.session_distance(uuid, uuid);
DROP FUNCTION IF EXISTS app.haversine_m(double precision, double precision, double precision, double precision);
DROP FUNCTION IF EXISTS app.tracking_settings_for(uuid);
DROP TABLE IF EXISTS session_summaries, tracking_settings;
