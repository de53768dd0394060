-- What monitoring reads about the queues, in one statement.

-- name: queue_stats
-- One row per (metric, queue, state) with its value; state is '' where it does not apply.
-- $1: how recently a worker must have been seen to count as serving its queues.
-- Waiting and active jobs are counted in one pass over the hot table (its size is the
-- backlog, never the history); finished jobs come from the counters the history trigger
-- keeps. Every queue gets a row for every metric, zeros included, so that alerts see a
-- value rather than a missing series.
--   jobs                       waiting and active jobs, by state (created, retry, active)
--   dead_letters               waiting or active copies of failed jobs (origin_id set)
--   oldest_waiting_seconds     age of the oldest job that is due and waiting (0 if none)
--   oldest_heartbeat_seconds   age of the oldest heartbeat of an active job (0 if none)
--   finished_total             jobs that ever arrived in history, by final state
--   last_finished_timestamp    when the latest of them arrived (epoch seconds), by state
--   workers                    workers seen in the last $1 seconds that run the queue
-- and one fleet-wide row (queue ''):
--   workers_last_seen_seconds  since the most recent registry touch of any worker
--                              ('Infinity' when no worker is registered)
WITH hot AS (
    SELECT queue, state::text AS state, count(*) AS n,
           count(*) FILTER (WHERE origin_id IS NOT NULL) AS dead,
           min(start_after) FILTER (WHERE start_after <= now()) AS oldest_due,
           min(heartbeat_at) AS oldest_heartbeat
    FROM /*schema*/jobs
    GROUP BY queue, state
),
per_queue AS (
    SELECT q.name AS queue,
           coalesce(sum(h.dead), 0) AS dead,
           min(h.oldest_due) FILTER (WHERE h.state IN ('created', 'retry')) AS oldest_due,
           min(h.oldest_heartbeat) FILTER (WHERE h.state = 'active') AS oldest_heartbeat
    FROM /*schema*/queues q LEFT JOIN hot h ON h.queue = q.name
    GROUP BY q.name
),
finished AS (
    SELECT queue, state::text AS state, sum(total) AS total, max(last_at) AS last_at
    FROM /*schema*/history_counts
    GROUP BY queue, state
),
serving AS (
    SELECT served.queue, count(*) AS n
    FROM /*schema*/workers w, jsonb_object_keys(w.queues) AS served(queue)
    WHERE w.last_seen_at > now() - make_interval(secs => $1::double precision)
    GROUP BY served.queue
)
SELECT 'jobs' AS metric, q.name AS queue, s.state, coalesce(h.n, 0)::float8 AS value
FROM /*schema*/queues q
CROSS JOIN unnest(ARRAY['created', 'retry', 'active']) AS s(state)
LEFT JOIN hot h ON h.queue = q.name AND h.state = s.state
UNION ALL
SELECT 'dead_letters', queue, '', dead::float8 FROM per_queue
UNION ALL
SELECT 'oldest_waiting_seconds', queue, '',
       coalesce(extract(epoch FROM now() - oldest_due), 0)::float8 FROM per_queue
UNION ALL
SELECT 'oldest_heartbeat_seconds', queue, '',
       coalesce(greatest(extract(epoch FROM now() - oldest_heartbeat), 0), 0)::float8
FROM per_queue
UNION ALL
SELECT 'finished_total', q.name, s.state, coalesce(f.total, 0)::float8
FROM /*schema*/queues q
CROSS JOIN unnest(ARRAY['completed', 'failed', 'cancelled']) AS s(state)
LEFT JOIN finished f ON f.queue = q.name AND f.state = s.state
UNION ALL
SELECT 'last_finished_timestamp', queue, state, extract(epoch FROM last_at)::float8
FROM finished WHERE last_at IS NOT NULL
UNION ALL
SELECT 'workers', q.name, '', coalesce(s.n, 0)::float8
FROM /*schema*/queues q LEFT JOIN serving s ON s.queue = q.name
UNION ALL
SELECT 'workers_last_seen_seconds', '', '',
       coalesce(extract(epoch FROM now() - max(last_seen_at)), 'Infinity')::float8
FROM /*schema*/workers;
