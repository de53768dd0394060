-- Maintenance: reclaiming jobs from dead or stuck workers, pruning history, and the
-- leadership that decides which worker of the fleet does it. Every statement here is
-- set-based and safe to run from two processes at once: leadership only saves work.

-- name: lock_session
-- Prepare a direct connection that holds a session lock (the leadership, a worker's
-- liveness): $1 bounds each wait for a lock (so that a waiter checks its connection now
-- and then), the keepalives make the server notice a vanished host within seconds instead
-- of hours, releasing its locks, and $2 names the connection in pg_stat_activity.
SELECT set_config('lock_timeout', $1::text, false),
       set_config('tcp_keepalives_idle', '10', false),
       set_config('tcp_keepalives_interval', '5', false),
       set_config('tcp_keepalives_count', '3', false),
       set_config('application_name', $2::text, false);

-- name: leader_acquire
-- Wait (up to lock_timeout) for the maintenance leadership of schema $1: a session advisory
-- lock, released by the server as soon as the holder's session ends, however it ends.
SELECT pg_advisory_lock(hashtextextended('ms8-jobs leader ' || $1::text, 0));

-- name: leader_release
-- Step down (on a graceful stop), so that a waiting worker takes over at once.
SELECT pg_advisory_unlock(hashtextextended('ms8-jobs leader ' || $1::text, 0));

-- name: lost_jobs
-- Active jobs that their worker no longer looks after: no heartbeat for $1 seconds (the
-- worker died, hangs or lost the database), or running longer than their run timeout plus $2
-- seconds of grace (so that a live worker's own timeout acts first). At most $3, locked
-- until the caller's transaction ends, so that none of them completes, heartbeats or
-- fails by another hand while the caller fails it; rows locked elsewhere are skipped and
-- left for the next pass. Reads only active jobs (jobs_active index).
SELECT j.id, j.queue, j.worker_id, j.batch_id,
       CASE WHEN coalesce(j.heartbeat_at, j.started_at)
                 < now() - make_interval(secs => $1::double precision)
            THEN 'stalled' ELSE 'timeout' END AS reason,
       extract(epoch FROM now() - coalesce(j.heartbeat_at, j.started_at))::double precision
           AS silent_seconds,
       j.run_timeout_seconds
FROM /*schema*/jobs j
WHERE j.state = 'active'
  AND (coalesce(j.heartbeat_at, j.started_at)
           < now() - make_interval(secs => $1::double precision)
       OR (j.run_timeout_seconds IS NOT NULL
           AND j.started_at + make_interval(secs => j.run_timeout_seconds + $2::double precision)
               < now()))
ORDER BY j.id
LIMIT $3::integer
FOR UPDATE SKIP LOCKED;

-- name: worker_jobs
-- The active jobs of workers $1 (found dead), at most $2, locked until the caller's
-- transaction ends; rows locked elsewhere (being completed right now) are skipped.
SELECT j.id, j.queue, j.worker_id, j.batch_id
FROM /*schema*/jobs j
WHERE j.state = 'active' AND j.worker_id = ANY($1::text[])
ORDER BY j.id
LIMIT $2::integer
FOR UPDATE SKIP LOCKED;

-- name: held_jobs
-- Active jobs among $1 that worker $2 holds, locked until the caller's transaction ends
-- (a worker handing back jobs of its own; one being taken back by maintenance right now
-- is waited for, then no longer matches).
SELECT j.id, j.queue, j.worker_id, j.batch_id
FROM /*schema*/jobs j
WHERE j.id = ANY($1::bigint[]) AND j.state = 'active' AND j.worker_id = $2::text
ORDER BY j.id
FOR UPDATE;

-- name: crash_jobs
-- Take active jobs back from a worker that died or stalled ($1 ids, $2 why): it was not
-- the job's fault, so the attempt is given back (as a hand-back does) and a crash is
-- counted instead, and the job waits again at once. A job reaching its queue's crash
-- limit only has the crash counted and stays active: the caller fails it for good in the
-- same transaction. Returns one row per job, `back` telling which.
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[]) AS i(id, message)
),
limited AS (
    SELECT j.id, i.message,
           j.crash_count + 1 >= coalesce(
               (SELECT q.crash_limit FROM /*schema*/queues q WHERE q.name = j.queue), 5)
               AS poisoned
    FROM /*schema*/jobs j JOIN input i ON i.id = j.id
    WHERE j.state = 'active'
),
back AS (
    UPDATE /*schema*/jobs j
    SET state = CASE WHEN j.attempt > 1 THEN 'retry' ELSE 'created' END::/*schema*/job_state,
        attempt = j.attempt - 1, crash_count = j.crash_count + 1, worker_id = NULL,
        heartbeat_at = NULL, started_at = NULL, start_after = now(),
        error_message = l.message, error_traceback = NULL
    FROM limited l
    WHERE j.id = l.id AND NOT l.poisoned
    RETURNING j.id, j.state, j.crash_count, j.start_after, j.batch_id
),
poisoned AS (
    UPDATE /*schema*/jobs j
    SET crash_count = j.crash_count + 1
    FROM limited l
    WHERE j.id = l.id AND l.poisoned
    RETURNING j.id, j.state, j.crash_count, j.batch_id
)
SELECT id, state::text, true AS back, crash_count, start_after, batch_id FROM back
UNION ALL
SELECT id, state::text, false, crash_count, NULL, batch_id FROM poisoned;

-- name: prune_history
-- Delete at most $1 finished jobs kept longer than their queue's retention, oldest first
-- (history_retention index), in one short statement; the caller repeats while a chunk comes
-- back full. Children of a batch that has not finished are kept: it still counts them.
WITH doomed AS (
    SELECT h.id
    FROM /*schema*/queues q
    CROSS JOIN LATERAL (
        SELECT h.id FROM /*schema*/history h
        WHERE h.queue = q.name
          AND h.completed_at < now() - make_interval(secs => q.retention_seconds)
          AND (h.batch_id IS NULL OR NOT EXISTS (
                   SELECT 1 FROM /*schema*/batches b
                   WHERE b.id = h.batch_id AND b.finished_at IS NULL))
        ORDER BY h.completed_at
        LIMIT $1::integer
    ) h
    LIMIT $1::integer
),
deleted AS (
    DELETE FROM /*schema*/history h USING doomed d WHERE h.id = d.id RETURNING h.id
)
SELECT count(*)::integer AS n FROM deleted;

-- name: release_orphans
-- Hand back, without counting the attempt, active jobs that worker $1 holds in the table
-- but does not know of ($2: the ids it knows): jobs claimed by a fetch whose reply was
-- lost with the connection. Without this they would wait for the stall timeout.
UPDATE /*schema*/jobs
SET state = CASE WHEN attempt > 1 THEN 'retry' ELSE 'created' END::/*schema*/job_state,
    attempt = attempt - 1, worker_id = NULL, heartbeat_at = NULL, started_at = NULL,
    start_after = now()
WHERE state = 'active' AND worker_id = $1::text AND NOT (id = ANY($2::bigint[]))
RETURNING id;

-- name: leader_try_pass
-- Pass mode (no session connection, e.g. behind PgBouncer in transaction mode): lead for
-- the current transaction only, when no one else leads. Same key as leader_acquire, so a
-- session leader and pass leaders exclude each other.
SELECT pg_try_advisory_xact_lock(hashtextextended('ms8-jobs leader ' || $1::text, 0));
