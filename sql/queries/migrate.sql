-- name: migrate_lock
-- Serialise migrators of one schema (session lock on the migrator's direct connection).
SELECT pg_advisory_lock(hashtextextended('ms8-jobs migrate ' || $1::text, 0));

-- name: migrate_unlock
SELECT pg_advisory_unlock(hashtextextended('ms8-jobs migrate ' || $1::text, 0));

-- name: create_version_table
CREATE SCHEMA IF NOT EXISTS /*schema_name*/;
CREATE TABLE IF NOT EXISTS /*schema*/schema_version (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: record_version
-- Inserted first in each migration's transaction, so that a concurrent migrator clashes here.
INSERT INTO /*schema*/schema_version (version, name) VALUES ($1::integer, $2::text);

-- name: applied_versions
SELECT version FROM /*schema*/schema_version ORDER BY version;

-- name: version_table_exists
-- $1 is the qualified name of the version table.
SELECT to_regclass($1::text) IS NOT NULL AS present;

-- name: current_version
SELECT max(version) AS version FROM /*schema*/schema_version;
