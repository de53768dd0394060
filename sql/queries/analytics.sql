-- The MS8 domain's queries: user-roles, snapshots, nightly runs (schema /*analytics*/).

-- name: seed_user_roles
-- Insert the deterministic user-roles numbered $1..$2 (user "user-N", one of four roles)
-- that do not exist yet; returns how many were new. Re-running it adds nothing.
WITH inserted AS (
    INSERT INTO /*analytics*/user_roles (user_id, role_id)
    SELECT 'user-' || n, (ARRAY['learner', 'instructor', 'manager', 'admin'])[1 + n % 4]
    FROM generate_series($1::bigint, $2::bigint) AS n
    ON CONFLICT (user_id, role_id) DO NOTHING
    RETURNING 1
)
SELECT count(*) AS inserted FROM inserted;

-- name: count_user_roles
-- All user-roles, and the active ones.
SELECT count(*) AS total, count(*) FILTER (WHERE active) AS active
FROM /*analytics*/user_roles;

-- name: get_user_role
SELECT * FROM /*analytics*/user_roles WHERE id = $1::bigint;

-- name: page_active_user_roles
-- The next $2 active user-role ids after id $1, in id order (the fan-out's keyset page).
SELECT id FROM /*analytics*/user_roles
WHERE active AND id > $1::bigint
ORDER BY id
LIMIT $2::integer;

-- name: upsert_snapshots
-- Write the snapshots of user-roles $1 for days $2 (arrays, with statuses $3, data $4,
-- missing $5, durations $6, job ids $7 and batch ids $8; at most one element per
-- user-role and day), in one statement: the collections that ended together share a
-- commit. A second write for the same day replaces the first (a retry or a re-run never
-- adds a row). Returns the (user-role, day) pairs written; a user-role that is gone has
-- none.
INSERT INTO /*analytics*/snapshots (
    user_role_id, day, collected_at, status, data, missing, duration_ms, job_id, batch_id)
SELECT u.id, s.day, now(), s.status, s.data, s.missing, s.duration_ms, s.job_id, s.batch_id
FROM unnest($1::bigint[], $2::date[], $3::text[], $4::jsonb[], $5::jsonb[], $6::integer[],
            $7::bigint[], $8::bigint[])
         AS s(user_role_id, day, status, data, missing, duration_ms, job_id, batch_id)
JOIN /*analytics*/user_roles u ON u.id = s.user_role_id
ON CONFLICT (user_role_id, day) DO UPDATE
SET collected_at = excluded.collected_at, status = excluded.status, data = excluded.data,
    missing = excluded.missing, duration_ms = excluded.duration_ms,
    job_id = excluded.job_id, batch_id = excluded.batch_id
RETURNING user_role_id, day;

-- name: latest_snapshot
-- The most recent snapshot of a user-role (the primary key read backwards).
SELECT * FROM /*analytics*/snapshots
WHERE user_role_id = $1::bigint
ORDER BY day DESC
LIMIT 1;

-- name: batch_snapshot_summary
-- What the jobs of batch $1 wrote: partial snapshots, and per source the number of
-- snapshots missing it.
SELECT count(*) FILTER (WHERE s.status = 'partial') AS partial,
       (SELECT coalesce(jsonb_object_agg(f.source, f.n), '{}') FROM (
            SELECT m->>'source' AS source, count(*) AS n
            FROM /*analytics*/snapshots x CROSS JOIN jsonb_array_elements(x.missing) m
            WHERE x.batch_id = $1::bigint
            GROUP BY 1) f) AS source_failures
FROM /*analytics*/snapshots s
WHERE s.batch_id = $1::bigint;

-- name: open_nightly_run
-- Create the run of night $1 unless it exists (a second run of the night finds it).
INSERT INTO /*analytics*/nightly_runs (night, fire_time, job_id)
VALUES ($1::date, $2::timestamptz, $3::bigint)
ON CONFLICT (night) DO NOTHING;

-- name: lock_nightly_run
-- The run of a night, locked until the transaction ends: fan-outs of one night take
-- turns, each chunk reading the cursor the previous one left.
SELECT * FROM /*analytics*/nightly_runs WHERE night = $1::date FOR UPDATE;

-- name: set_nightly_run_batch
UPDATE /*analytics*/nightly_runs SET batch_id = $2::bigint WHERE night = $1::date;

-- name: advance_nightly_run
-- Move the fan-out's cursor past the chunk just sent (same transaction as the send).
UPDATE /*analytics*/nightly_runs
SET last_user_role_id = $2::bigint, sent = sent + $3::integer
WHERE night = $1::date;

-- name: finish_nightly_fanout
UPDATE /*analytics*/nightly_runs SET fanned_out_at = now() WHERE night = $1::date;

-- name: write_nightly_summary
-- The night's summary, once its batch has finished; written again by a retry, same values.
UPDATE /*analytics*/nightly_runs
SET finished_at = $3::timestamptz, total = $4::integer, complete = $5::integer,
    partial = $6::integer, failed = $7::integer, cancelled = $8::integer,
    duration_seconds = extract(epoch FROM $3::timestamptz - started_at),
    source_failures = $9::jsonb
WHERE night = $1::date AND batch_id = $2::bigint
RETURNING *;

-- name: get_nightly_run
SELECT * FROM /*analytics*/nightly_runs WHERE night = $1::date;

-- name: list_nightly_runs
-- Runs latest night first, before night $1 (keyset cursor).
SELECT * FROM /*analytics*/nightly_runs
WHERE $1::date IS NULL OR night < $1::date
ORDER BY night DESC
LIMIT $2::integer;

-- name: insert_breaker_openings
-- Record openings of sources' breakers ($1 sources, $2 times, $3 whether after a failed
-- probe) in worker $4.
INSERT INTO /*analytics*/breaker_openings (source, opened_at, after_probe, worker_id)
SELECT source, opened_at, after_probe, $4::text
FROM unnest($1::text[], $2::timestamptz[], $3::boolean[]) AS o(source, opened_at, after_probe);

-- name: list_breaker_openings
-- Breaker openings of [$1, $2), oldest first, at most $3.
SELECT source, worker_id, opened_at, after_probe
FROM /*analytics*/breaker_openings
WHERE opened_at >= $1::timestamptz AND opened_at < $2::timestamptz
ORDER BY opened_at, id
LIMIT $3::integer;

-- name: prune_breaker_openings
-- Forget breaker openings older than $1 seconds.
WITH gone AS (
    DELETE FROM /*analytics*/breaker_openings
    WHERE opened_at < now() - make_interval(secs => $1::double precision)
    RETURNING 1
)
SELECT count(*)::integer AS n FROM gone;
