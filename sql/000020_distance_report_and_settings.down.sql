-- 000020 reversed.
DROP FUNCTION IF EXISTS app.track_geojson(jsonb, double precision);
DROP TRIGGER IF EXISTS tracking_settings_audit ON tracking_settings;
DROP FUNCTION IF EXISTS app.audit_tracking_settings();
CREATE OR REPLACE FUNCTION app.tracking_settings_for(p_org uuid) RETURNS tracking_settings
    LANGUAGE sql STABLE
    AS $$
        SELECT s FROM (
            SELECT t AS s, 0 AS pref FROM tracking_settings t WHERE t.organization_id = p_org
            UNION ALL
            SELECT ROW(p_org, 100, 70, 5, 50, 120, 168, now())::tracking_settings, 1
        ) x ORDER BY pref LIMIT 1
    $$;
DROP FUNCTION IF EXISTS app.tracking_settings_defaults(uuid);
ALTER TABLE tracking_settings
    DROP CONSTRAINT IF EXISTS tracking_settings_max_accuracy_range,
    DROP CONSTRAINT IF EXISTS tracking_settings_max_speed_range,
    DROP CONSTRAINT IF EXISTS tracking_settings_jitter_floor_range,
    DROP CONSTRAINT IF EXISTS tracking_settings_stay_radius_range,
    DROP CONSTRAINT IF EXISTS tracking_settings_stay_min_seconds_range,
    DROP CONSTRAINT IF EXISTS tracking_settings_max_session_hours_range;
