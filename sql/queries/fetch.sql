-- name: fetch_jobs
-- Claim waiting jobs for a worker: $1 queues, $2 how many of each, $3 the worker id.
SELECT * FROM /*schema*/fetch_jobs($1::text[], $2::integer[], $3::text);

-- name: fetch_jobs_unflushed
-- The same claim, its commit not waiting for its WAL flush (MS8_CLAIM_COMMIT=async): a
-- PostgreSQL crash may forget it once acknowledged. The setting is made in an argument,
-- evaluated before the claim runs, and holds for this statement's transaction only.
SELECT * FROM /*schema*/fetch_jobs($1::text[], $2::integer[],
    CASE set_config('synchronous_commit', 'off', true) WHEN 'off' THEN $3::text END);

-- name: next_start_after
-- The earliest start_after among the waiting jobs of these queues (NULL when none wait).
SELECT min(n.start_after) AS start_after
FROM unnest($1::text[]) AS q(name),
     LATERAL (SELECT j.start_after FROM /*schema*/jobs j
              WHERE j.queue = q.name AND j.state IN ('created', 'retry')
              ORDER BY j.start_after LIMIT 1) n;

-- name: heartbeat_jobs
-- Mark a worker's active jobs alive in one statement; returns the ids it still holds.
UPDATE /*schema*/jobs
SET heartbeat_at = now()
WHERE id = ANY($1::bigint[]) AND state = 'active' AND worker_id = $2::text
RETURNING id;

-- name: release_jobs
-- Hand a worker's active jobs back to the queue without counting the attempt (shutdown).
UPDATE /*schema*/jobs
SET state = CASE WHEN attempt > 1 THEN 'retry' ELSE 'created' END::/*schema*/job_state,
    attempt = attempt - 1, worker_id = NULL, heartbeat_at = NULL, started_at = NULL,
    start_after = now()
WHERE id = ANY($1::bigint[]) AND state = 'active' AND worker_id = $2::text
RETURNING id;

-- name: set_progress
-- Record progress (0-100 and a message) of an active job; the update trigger publishes it.
UPDATE /*schema*/jobs
SET progress = $2::smallint, progress_message = $3::text
WHERE id = $1::bigint AND state = 'active' AND ($4::text IS NULL OR worker_id = $4::text)
RETURNING id;

-- name: extend_run_timeout
-- Let active job $1, held by worker $2, run until $3 seconds from now: its run timeout
-- (counted from started_at, as the worker's timer and maintenance count it) grows to
-- cover that, never shrinks, and never past $4 seconds unless it was longer already.
-- No row when the job is not active, not held by $2, has no run timeout, or the cap
-- refuses.
UPDATE /*schema*/jobs j
SET run_timeout_seconds = greatest(
        j.run_timeout_seconds,
        extract(epoch FROM now() - j.started_at)::double precision + $3::double precision)
WHERE j.id = $1::bigint AND j.state = 'active' AND j.worker_id = $2::text
  AND j.run_timeout_seconds IS NOT NULL
  AND extract(epoch FROM now() - j.started_at)::double precision + $3::double precision
      <= greatest($4::double precision, j.run_timeout_seconds)
RETURNING j.run_timeout_seconds,
          extract(epoch FROM j.started_at + make_interval(secs => j.run_timeout_seconds)
                  - now())::double precision AS seconds_left;
