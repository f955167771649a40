-- 000002 organizations, reversed.
DROP TABLE IF EXISTS organizations;
