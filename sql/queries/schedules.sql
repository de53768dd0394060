-- name: insert_schedule
-- Create a schedule; no row when the name is taken.
INSERT INTO /*schema*/schedules (name, cron, timezone, queue, data, options, enabled)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::jsonb, $7::boolean)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: get_schedule_for_update
-- The schedule row, locked for a read-modify-write.
SELECT * FROM /*schema*/schedules WHERE name = $1::text FOR UPDATE;

-- name: update_schedule
-- Replace a schedule's settings. A new expression or time zone, or enabling it, re-arms
-- it: fire times before now are then never due (no catch-up of a time it never had).
UPDATE /*schema*/schedules s
SET cron = $2::text, timezone = $3::text, queue = $4::text, data = $5::jsonb,
    options = $6::jsonb, enabled = $7::boolean,
    armed_at = CASE WHEN s.cron <> $2::text OR s.timezone <> $3::text
                         OR ($7::boolean AND NOT s.enabled)
                    THEN now() ELSE s.armed_at END,
    updated_at = now()
WHERE name = $1::text
RETURNING *;

-- name: delete_schedule
-- Delete a schedule (its firings go with it).
DELETE FROM /*schema*/schedules WHERE name = $1::text RETURNING name;

-- name: list_schedules
-- Schedules by name ($1: one name, or NULL for all), each with its latest firing (the
-- firings_once index read backwards: one row per schedule).
SELECT s.*, f.id AS firing_id, f.fire_time AS firing_fire_time, f.kind AS firing_kind,
       f.job_id AS firing_job_id, f.job_created AS firing_job_created,
       f.fired_at AS firing_fired_at
FROM /*schema*/schedules s
LEFT JOIN LATERAL (
    SELECT * FROM /*schema*/firings x
    WHERE x.schedule = s.name
    ORDER BY x.fire_time DESC
    LIMIT 1
) f ON true
WHERE $1::text IS NULL OR s.name = $1::text
ORDER BY s.name;

-- name: lock_schedule_for_firing
-- The schedule row, share-locked until the firing commits: a concurrent update or delete
-- waits for the firing rather than racing the foreign key of its insert.
SELECT * FROM /*schema*/schedules WHERE name = $1::text FOR SHARE;

-- name: insert_firing
-- Claim a fire time ($2; NULL means now, for a manual run). No row when another
-- scheduler (or an earlier wake-up) already claimed it: the exactly-once guarantee.
INSERT INTO /*schema*/firings (schedule, fire_time, kind)
VALUES ($1::text, coalesce($2::timestamptz, clock_timestamp()), $3::text)
ON CONFLICT (schedule, fire_time) DO NOTHING
RETURNING id, fire_time;

-- name: set_firing_job
-- Record the job a firing sent, in the same transaction as the claim.
UPDATE /*schema*/firings SET job_id = $2::bigint, job_created = $3::boolean
WHERE id = $1::bigint
RETURNING *;

-- name: get_firing
-- The firing of a schedule at a fire time, if there was one.
SELECT * FROM /*schema*/firings WHERE schedule = $1::text AND fire_time = $2::timestamptz;

-- name: list_firings
-- Firings of a schedule, latest fire time first, before fire time $2 (keyset cursor).
SELECT * FROM /*schema*/firings
WHERE schedule = $1::text AND ($2::timestamptz IS NULL OR fire_time < $2::timestamptz)
ORDER BY fire_time DESC
LIMIT $3::integer;

-- name: prune_firings
-- Delete up to $2 firings whose fire time is older than $1, always keeping the latest
-- firing of each schedule (it is what the schedule list shows as "last").
WITH old AS (
    SELECT f.id FROM /*schema*/firings f
    WHERE f.fire_time < $1::timestamptz
      AND EXISTS (SELECT 1 FROM /*schema*/firings newer
                  WHERE newer.schedule = f.schedule AND newer.fire_time > f.fire_time)
    ORDER BY f.fire_time
    LIMIT $2::integer
)
DELETE FROM /*schema*/firings f USING old WHERE f.id = old.id
RETURNING f.id;
