-- The worker registry (table workers): who runs, where, for which queues.

-- name: upsert_worker
-- Register a worker, or mark it seen when it is registered already. Upserting (rather than
-- only updating) brings back a worker that maintenance forgot while it could not reach
-- the database. $4 is {queue: concurrency} as JSON text; $6 says whether it holds its
-- session lock (worker_lock) while it lives.
INSERT INTO /*schema*/workers AS w (id, host, pid, queues, concurrency, session_lock)
VALUES ($1::text, $2::text, $3::integer, $4::jsonb, $5::integer, $6::boolean)
ON CONFLICT (id) DO UPDATE
SET last_seen_at = now(), host = excluded.host, pid = excluded.pid,
    queues = excluded.queues, concurrency = excluded.concurrency,
    session_lock = excluded.session_lock
RETURNING w.started_at, w.last_seen_at;

-- name: worker_lock
-- Take worker $1's session lock, held until the session ends: its death is visible in
-- pg_locks the moment PostgreSQL sees the session go. False while another session holds
-- it (this worker's previous session, not yet seen gone).
SELECT pg_try_advisory_lock(/*schema*/worker_lock_key($1::text));

-- name: liveness_check
-- One look at the fleet for the liveness check. unlocked: registered workers that hold a
-- session lock while they live, registered more than $1 seconds ago (a worker takes its
-- lock before it registers: this is only a margin), whose lock nobody holds: their
-- session is gone. busy: some job is active. next_start_in: seconds until the earliest
-- waiting job of a queue that is not paused may start (negative when one is due, NULL
-- when none waits): while nothing is active and nothing is due, no job can become active
-- before then except by a send or a resume, which NOTIFY.
WITH held AS MATERIALIZED (
    SELECT (l.classid::bigint << 32) | l.objid::bigint AS key
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT ARRAY(SELECT w.id
             FROM /*schema*/workers w
             WHERE w.session_lock
               AND w.started_at < now() - make_interval(secs => $1::double precision)
               AND NOT EXISTS (SELECT 1 FROM held
                               WHERE held.key = /*schema*/worker_lock_key(w.id))
             ORDER BY w.id) AS unlocked,
       EXISTS (SELECT 1 FROM /*schema*/jobs j WHERE j.state = 'active') AS busy,
       (SELECT extract(epoch FROM min(n.start_after) - now())::double precision
        FROM /*schema*/queues q,
             LATERAL (SELECT j.start_after FROM /*schema*/jobs j
                      WHERE j.queue = q.name AND j.state IN ('created', 'retry')
                      ORDER BY j.start_after LIMIT 1) n
        WHERE NOT q.paused) AS next_start_in;

-- name: forget_workers
-- Forget workers found dead (their jobs were handed back first).
DELETE FROM /*schema*/workers WHERE id = ANY($1::text[]) RETURNING id;

-- name: delete_worker
-- A worker that stops says goodbye.
DELETE FROM /*schema*/workers WHERE id = $1::text RETURNING id;

-- name: list_workers
-- The registered workers, oldest first.
SELECT * FROM /*schema*/workers ORDER BY started_at, id;

-- name: reap_workers
-- Forget workers not seen for $1 seconds (killed without deregistering, and holding no
-- session lock that would have told at once). Their jobs are reclaimed by their stale
-- heartbeats, not here.
DELETE FROM /*schema*/workers
WHERE last_seen_at < now() - make_interval(secs => $1::double precision)
RETURNING id;
