-- 000020 the distance report's track as GeoJSON, and tracking settings that admins change through the API.
--
-- Why:
-- * GET /admin/sessions/{id}/distance-report and GET /attendance/{sessionId}/distance-report answer
--   app.distance_report (000019: the same computation as the session's distance) with the cleaned track as
--   GeoJSON, simplified on request: app.track_geojson.
-- * GET/PATCH /admin/tracking-settings lets an organization's admins tune the GPS cleaning. The API
-- validates the same ranges (openapi.yaml); the constraints hold them for every writer (a DBA's UPDATE
-- included). A change recalculates nothing by itself: recalculations and distance reports use the
-- values in force when they run. Every change is in the audit log (tracking_settings.updated), with the
-- values before and after.
-- Locks: creates functions; adds CHECK constraints to tracking_settings (ACCESS EXCLUSIVE while its few rows, one per
-- organization that changed a setting, are checked); creates functions and a trigger.

ALTER TABLE tracking_settings
    ADD CONSTRAINT tracking_settings_max_accuracy_range CHECK (max_accuracy_m BETWEEN 1 AND 1000),
    ADD CONSTRAINT tracking_settings_max_speed_range CHECK (max_speed_mps BETWEEN 1 AND 150),
    ADD CONSTRAINT tracking_settings_jitter_floor_range CHECK (jitter_floor_m BETWEEN 0 AND 100),
    ADD CONSTRAINT tracking_settings_stay_radius_range CHECK (stay_radius_m BETWEEN 5 AND 1000),
    ADD CONSTRAINT tracking_settings_stay_min_seconds_range CHECK (stay_min_seconds BETWEEN 10 AND 86400),
    ADD CONSTRAINT tracking_settings_max_session_hours_range CHECK (max_session_hours BETWEEN 1 AND 336);

-- The defaults, once: an organization without a row uses them (app.tracking_settings_for), and its first
-- change is audited against them.
CREATE FUNCTION app.tracking_settings_defaults(p_org uuid) RETURNS tracking_settings
    LANGUAGE sql STABLE
    AS $$ SELECT ROW(p_org, 100, 70, 5, 50, 120, 168, now())::tracking_settings $$;

CREATE OR REPLACE FUNCTION app.tracking_settings_for(p_org uuid) RETURNS tracking_settings
    LANGUAGE sql STABLE
    AS $$
        SELECT coalesce((SELECT t FROM tracking_settings t WHERE t.organization_id = p_org),
                        app.tracking_settings_defaults(p_org))
    $$;

-- The audit row's changes are against the settings in force before: the organization's row or, for its
-- first change, the defaults (so it shows what changed, not every column).
CREATE FUNCTION app.audit_tracking_settings() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app, pg_temp
    AS $$
DECLARE
    v_old jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD)
                        ELSE to_jsonb(app.tracking_settings_defaults(NEW.organization_id)) END;
    v_changes jsonb := app.audit_changes(v_old, to_jsonb(NEW));
BEGIN
    IF app.role() IS DISTINCT FROM 'ADMIN' OR v_changes = '{}' THEN
        RETURN NULL;
    END IF;
    PERFORM app.audit('tracking_settings.updated', 'tracking_settings', NEW.organization_id::text,
                      jsonb_build_object('changes', v_changes));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION app.audit_tracking_settings() FROM PUBLIC;
-- Owned by fieldtrack_owner as every definer function (000016).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldtrack_owner') THEN
        ALTER FUNCTION app.audit_tracking_settings() OWNER TO fieldtrack_owner;
    END IF;
END
$$;

CREATE TRIGGER tracking_settings_audit AFTER INSERT OR UPDATE ON tracking_settings
    FOR EACH ROW EXECUTE FUNCTION app.audit_tracking_settings();

-- app.track_geojson: a distance report's track (000019: [{latitude, longitude, recorded_at, segment, stay}]
-- in order) as GeoJSON: a LineString, or a MultiLineString with a line per segment when the track restarted
-- (a gap that counted nothing is not drawn). With p_tolerance_m > 0 each line is simplified by
-- Douglas-Peucker in Web Mercator, the tolerance scaled by latitude (as app.simplified_route), its ends
-- kept. A line of one point is drawn as that point twice; a track without points has no coordinates.
CREATE FUNCTION app.track_geojson(p_track jsonb, p_tolerance_m double precision) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, public, app
    AS $$
        WITH pts AS (
            SELECT (e ->> 'longitude')::double precision AS x, (e ->> 'latitude')::double precision AS y,
                   coalesce((e ->> 'segment')::integer, 1) AS seg, n
              FROM jsonb_array_elements(coalesce(p_track, '[]')) WITH ORDINALITY AS t(e, n)
        ), lines AS (
            SELECT seg, ST_MakeLine(ST_SetSRID(ST_MakePoint(x, y), 4326) ORDER BY n) AS g, avg(y) AS lat
              FROM pts GROUP BY seg
        ), drawn AS (
            SELECT seg, CASE WHEN coalesce(p_tolerance_m, 0) > 0 AND ST_NPoints(g) > 2
                             THEN ST_Transform(ST_Simplify(ST_Transform(g, 3857),
                                                           p_tolerance_m / greatest(cos(radians(lat)), 0.01)), 4326)
                             WHEN ST_NPoints(g) = 1 THEN ST_AddPoint(g, ST_StartPoint(g))
                             ELSE g END AS g
              FROM lines
        )
        SELECT CASE (SELECT count(*) FROM drawn)
                   WHEN 0 THEN jsonb_build_object('type', 'LineString', 'coordinates', '[]'::jsonb)
                   WHEN 1 THEN (SELECT ST_AsGeoJSON(g, 7)::jsonb FROM drawn)
                   ELSE (SELECT ST_AsGeoJSON(ST_Collect(g ORDER BY seg), 7)::jsonb FROM drawn) END
    $$;
