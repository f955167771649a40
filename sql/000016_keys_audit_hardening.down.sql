-- 000016 reversed.
DROP TABLE IF EXISTS app.stream_keys;
-- fieldtrack_listener is cluster-wide (other databases may use it): it stays.
