-- The worker registry (table workers): who runs, where, for which queues.

-- name: upsert_worker
-- Register a worker, or mark it seen when it is registered already. Upserting (rather than
-- only updating) brings back a worker that maintenance forgot while it could not reach
-- the database. $4 is {queue: concurrency} as JSON text.
INSERT INTO /*schema*/workers AS w (id, host, pid, queues, concurrency)
VALUES ($1::text, $2::text, $3::integer, $4::jsonb, $5::integer)
ON CONFLICT (id) DO UPDATE
SET last_seen_at = now(), host = excluded.host, pid = excluded.pid,
    queues = excluded.queues, concurrency = excluded.concurrency
RETURNING w.started_at, w.last_seen_at;

-- name: delete_worker
-- A worker that stops says goodbye.
DELETE FROM /*schema*/workers WHERE id = $1::text RETURNING id;

-- name: list_workers
-- The registered workers, oldest first.
SELECT * FROM /*schema*/workers ORDER BY started_at, id;

-- name: reap_workers
-- Forget workers not seen for $1 seconds (killed without deregistering). Their jobs are
-- reclaimed by their stale heartbeats, not here.
DELETE FROM /*schema*/workers
WHERE last_seen_at < now() - make_interval(secs => $1::double precision)
RETURNING id;
