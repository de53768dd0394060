-- name: migrate_lock
-- Serialise migrators of one schema (session lock on the migrator's direct connection).
SELECT pg_advisory_lock(hashtextextended('ms8-jobs migrate ' || $1::text, 0));

-- name: migrate_unlock
SELECT pg_advisory_unlock(hashtextextended('ms8-jobs migrate ' || $1::text, 0));

-- name: create_version_table
-- The migrator's own bookkeeping, brought to its current shape before any migration runs
-- (the columns are needed to record the very next migration, so they cannot come in a
-- numbered one). checksum and compatibility are empty on rows recorded before they
-- existed; the migrator fills them in from its files.
CREATE SCHEMA IF NOT EXISTS /*schema_name*/;
CREATE TABLE IF NOT EXISTS /*schema*/schema_version (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE /*schema*/schema_version
    ADD COLUMN IF NOT EXISTS checksum text,
    ADD COLUMN IF NOT EXISTS compatibility text;

-- name: record_version
-- Inserted first in each migration's transaction, so that a concurrent migrator clashes here.
-- compatibility is 'previous' (code one version older runs on the result) or 'breaking'.
INSERT INTO /*schema*/schema_version (version, name, checksum, compatibility)
VALUES ($1::integer, $2::text, $3::text, $4::text);

-- name: backfill_versions
-- Checksums and compatibility of migrations recorded before the table had those columns.
UPDATE /*schema*/schema_version v
SET checksum = i.checksum, compatibility = i.compatibility
FROM unnest($1::integer[], $2::text[], $3::text[]) AS i(version, checksum, compatibility)
WHERE v.version = i.version AND v.checksum IS NULL;

-- name: applied_versions
-- Read through to_jsonb so that it works whatever shape the table has (older code may
-- read a table that newer code extended, and the other way round).
SELECT version, to_jsonb(v) ->> 'name' AS name, to_jsonb(v) ->> 'checksum' AS checksum,
       to_jsonb(v) ->> 'compatibility' AS compatibility
FROM /*schema*/schema_version v
ORDER BY version;

-- name: version_table_exists
-- $1 is the qualified name of the version table.
SELECT to_regclass($1::text) IS NOT NULL AS present;
