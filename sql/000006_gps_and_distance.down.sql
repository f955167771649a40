-- 000006 GPS and distance, reversed.
DROP TRIGGER IF EXISTS gps_locations_after_insert ON gps_locations;
DROP FUNCTION IF EXISTS app.simplified_route(uuid, uuid, double precision);
DROP FUNCTION IF EXISTS app.record_location(uuid, uuid, double precision, double precision, double precision, timestamptz, integer);
DROP FUNCTION IF EXISTS app.record_locations(uuid, uuid, double precision[], double precision[], double precision[], timestamptz[], integer[]);
DROP FUNCTION IF EXISTS app.locations_session(uuid, uuid, timestamptz, timestamptz, boolean);
DROP FUNCTION IF EXISTS app.gps_locations_after_insert();
DROP FUNCTION IF EXISTS app.replay_failed_distances(uuid, integer);
DROP FUNCTION IF EXISTS app.recalculate_session(uuid, uuid);
DROP FUNCTION IF EXISTS app.measure_session(attendance_sessions, boolean);
DROP FUNCTION IF EXISTS app.session_distance(uuid, uuid);
DROP FUNCTION IF EXISTS app.haversine_m(double precision, double precision, double precision, double precision);
DROP FUNCTION IF EXISTS app.tracking_settings_for(uuid);
DROP TABLE IF EXISTS session_summaries, tracking_settings, gps_locations;
