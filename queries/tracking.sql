-- The GPS cleaning's settings of the caller's organization (API role; row-level security).

-- name: TrackingSettingsGet :one
-- The settings in force: the organization's row, or the defaults (customized false, updated_at NULL).
SELECT (s).max_accuracy_m::float8 AS max_accuracy_m, (s).max_speed_mps::float8 AS max_speed_mps,
       (s).jitter_floor_m::float8 AS jitter_floor_m, (s).stay_radius_m::float8 AS stay_radius_m,
       (s).stay_min_seconds::int AS stay_min_seconds, (s).max_session_hours::int AS max_session_hours,
       (t.organization_id IS NOT NULL)::bool AS customized, t.updated_at
FROM (SELECT app.tracking_settings_for(@org_id::uuid) AS s) x
LEFT JOIN tracking_settings t ON t.organization_id = @org_id::uuid;

-- name: TrackingSettingsUpdate :one
-- Changes the given settings (NULL: unchanged) and returns those in force. The first change starts from
-- the defaults; a later one from the stored row, read under its lock, so concurrent changes of different
-- settings both hold.
INSERT INTO tracking_settings AS t (organization_id, max_accuracy_m, max_speed_mps, jitter_floor_m, stay_radius_m,
                                    stay_min_seconds, max_session_hours)
VALUES (@org_id::uuid,
        coalesce(sqlc.narg(max_accuracy_m)::float8, (app.tracking_settings_defaults(@org_id::uuid)).max_accuracy_m),
        coalesce(sqlc.narg(max_speed_mps)::float8, (app.tracking_settings_defaults(@org_id::uuid)).max_speed_mps),
        coalesce(sqlc.narg(jitter_floor_m)::float8, (app.tracking_settings_defaults(@org_id::uuid)).jitter_floor_m),
        coalesce(sqlc.narg(stay_radius_m)::float8, (app.tracking_settings_defaults(@org_id::uuid)).stay_radius_m),
        coalesce(sqlc.narg(stay_min_seconds)::int, (app.tracking_settings_defaults(@org_id::uuid)).stay_min_seconds),
        coalesce(sqlc.narg(max_session_hours)::int, (app.tracking_settings_defaults(@org_id::uuid)).max_session_hours))
-- VALUES, not INSERT ... SELECT: on Citus that one is planned through the coordinator, whose shard query
-- loses the parameters' types in the DO UPDATE.
ON CONFLICT (organization_id) DO UPDATE
   SET max_accuracy_m = coalesce(sqlc.narg(max_accuracy_m)::float8, t.max_accuracy_m),
       max_speed_mps = coalesce(sqlc.narg(max_speed_mps)::float8, t.max_speed_mps),
       jitter_floor_m = coalesce(sqlc.narg(jitter_floor_m)::float8, t.jitter_floor_m),
       stay_radius_m = coalesce(sqlc.narg(stay_radius_m)::float8, t.stay_radius_m),
       stay_min_seconds = coalesce(sqlc.narg(stay_min_seconds)::int, t.stay_min_seconds),
       max_session_hours = coalesce(sqlc.narg(max_session_hours)::int, t.max_session_hours)
RETURNING t.max_accuracy_m, t.max_speed_mps, t.jitter_floor_m, t.stay_radius_m, t.stay_min_seconds,
          t.max_session_hours, true AS customized, t.updated_at;

-- name: SessionDistanceReport :one
-- Why the session's distance is what it is (app.distance_report, the computation of the distance itself,
-- with the settings in force now), with the session's stored figures and the cleaned track as GeoJSON,
-- simplified to tolerance metres (0: every point). Row-level security decides which sessions the caller
-- sees: an employee its own, an admin the organization's.
SELECT (jsonb_build_object('session_id', s.id, 'employee_id', s.employee_id, 'checkin_at', s.checkin_at,
                           'checkout_at', s.checkout_at, 'stored_distance_km', s.total_distance_km,
                           'distance_recalculation_status', s.distance_recalculation_status)
        || (r.report - 'track' - 'session_id')
        || jsonb_build_object('track', app.track_geojson(r.report -> 'track', @tolerance::float8)))::jsonb AS report
FROM attendance_sessions s
CROSS JOIN LATERAL (SELECT app.distance_report(s.organization_id, s.id) AS report) r
WHERE s.organization_id = @org_id AND s.id = @session_id;
