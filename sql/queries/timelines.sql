-- How the numbers moved: per-minute rollups of finished jobs (kept by the history trigger,
-- migration 0010) and the samples of queue depth and fleet load that the maintenance
-- leader writes. Buckets of $3 seconds are aligned on the Unix epoch (date_bin), so the
-- same instant always falls in the same bucket.

-- name: job_rollups
-- Finished jobs of [$1, $2) per bucket of $3 seconds, queue and final state ($4: one
-- queue, or NULL for every queue), summed over the minutes and shards of the bucket:
-- count, run time and wait (sums, maxima, counts per bucket of rollup_bounds()).
SELECT date_bin(make_interval(secs => $3::double precision), r.minute,
                timestamptz '1970-01-01 00:00+00') AS at,
       r.queue, r.state::text AS state, sum(r.n)::bigint AS n,
       sum(r.run_seconds)::float8 AS run_seconds, max(r.run_max) AS run_max,
       /*schema*/sum_counts(r.run_buckets) AS run_buckets,
       sum(r.wait_seconds)::float8 AS wait_seconds, max(r.wait_max) AS wait_max,
       /*schema*/sum_counts(r.wait_buckets) AS wait_buckets
FROM /*schema*/job_rollups r
WHERE r.minute >= $1::timestamptz AND r.minute < $2::timestamptz
  AND ($4::text IS NULL OR r.queue = $4::text)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;

-- name: record_samples
-- One sample of every queue (waiting and active jobs, age of the oldest due job) and of
-- the fleet (workers seen in the last $1 seconds, their slots, and the slots busy: the
-- active jobs each holds, at most its concurrency, since a job whose result is still
-- being reported keeps no slot), at now(). One pass over the hot table, whose size is
-- the backlog, never the history. Returns how many queue samples were written.
WITH hot AS (
    SELECT queue, worker_id,
           count(*) FILTER (WHERE state IN ('created', 'retry')) AS waiting,
           count(*) FILTER (WHERE state = 'active') AS active,
           min(start_after) FILTER (WHERE state IN ('created', 'retry')
                                      AND start_after <= now()) AS oldest_due
    FROM /*schema*/jobs
    GROUP BY queue, worker_id
),
per_queue AS (
    SELECT queue, sum(waiting) AS waiting, sum(active) AS active, min(oldest_due) AS oldest_due
    FROM hot
    GROUP BY queue
),
held AS (
    SELECT worker_id, sum(active) AS n FROM hot WHERE worker_id IS NOT NULL GROUP BY worker_id
),
queued AS (
    INSERT INTO /*schema*/queue_samples (queue, at, waiting, active, oldest_waiting_seconds)
    SELECT q.name, now(), coalesce(h.waiting, 0), coalesce(h.active, 0),
           coalesce(greatest(extract(epoch FROM now() - h.oldest_due), 0), 0)
    FROM /*schema*/queues q LEFT JOIN per_queue h ON h.queue = q.name
    ON CONFLICT DO NOTHING
    RETURNING 1
),
fleet AS (
    INSERT INTO /*schema*/fleet_samples (at, workers, slots, busy)
    SELECT now(), count(*), coalesce(sum(w.concurrency), 0),
           coalesce(sum(least(coalesce(h.n, 0), w.concurrency)), 0)
    FROM /*schema*/workers w LEFT JOIN held h ON h.worker_id = w.id
    WHERE w.last_seen_at > now() - make_interval(secs => $1::double precision)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM queued)::integer AS queues,
       (SELECT count(*) FROM fleet)::integer AS fleet;

-- name: queue_depth_samples
-- Per bucket of $3 seconds of [$1, $2) and queue ($4, or NULL for all): the most jobs
-- waiting and active, and the oldest due job's age, that any sample in the bucket saw.
SELECT date_bin(make_interval(secs => $3::double precision), s.at,
                timestamptz '1970-01-01 00:00+00') AS at,
       s.queue, max(s.waiting) AS waiting, max(s.active) AS active,
       max(s.oldest_waiting_seconds) AS oldest_waiting_seconds
FROM /*schema*/queue_samples s
WHERE s.at >= $1::timestamptz AND s.at < $2::timestamptz
  AND ($4::text IS NULL OR s.queue = $4::text)
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: fleet_load_samples
-- Per bucket of $3 seconds of [$1, $2): the most workers, slots and busy slots that any
-- sample in the bucket saw.
SELECT date_bin(make_interval(secs => $3::double precision), s.at,
                timestamptz '1970-01-01 00:00+00') AS at,
       max(s.workers) AS workers, max(s.slots) AS slots, max(s.busy) AS busy
FROM /*schema*/fleet_samples s
WHERE s.at >= $1::timestamptz AND s.at < $2::timestamptz
GROUP BY 1
ORDER BY 1;

-- name: prune_timelines
-- Delete at most $1 rows each of rollups and queue samples older than their queue's
-- retention, and fleet samples older than the longest retention, never any of the last
-- $2 seconds (a day: the dashboard's default range stays whole). Per queue, the primary
-- keys (queue, minute|at) find exactly the old rows. Returns the rows deleted.
WITH kept AS (
    SELECT q.name,
           now() - make_interval(secs => greatest(q.retention_seconds, $2::double precision))
               AS cutoff
    FROM /*schema*/queues q
),
old_rollups AS (
    DELETE FROM /*schema*/job_rollups r
    WHERE (r.queue, r.minute, r.state, r.shard) IN (
        SELECT o.queue, o.minute, o.state, o.shard
        FROM kept k CROSS JOIN LATERAL (
            SELECT x.queue, x.minute, x.state, x.shard FROM /*schema*/job_rollups x
            WHERE x.queue = k.name AND x.minute < k.cutoff
            LIMIT $1::integer
        ) o
        LIMIT $1::integer)
    RETURNING 1
),
old_queue_samples AS (
    DELETE FROM /*schema*/queue_samples s
    WHERE (s.queue, s.at) IN (
        SELECT o.queue, o.at
        FROM kept k CROSS JOIN LATERAL (
            SELECT x.queue, x.at FROM /*schema*/queue_samples x
            WHERE x.queue = k.name AND x.at < k.cutoff
            LIMIT $1::integer
        ) o
        LIMIT $1::integer)
    RETURNING 1
),
old_fleet_samples AS (
    DELETE FROM /*schema*/fleet_samples s
    WHERE s.at IN (
        SELECT x.at FROM /*schema*/fleet_samples x
        WHERE x.at < coalesce((SELECT min(cutoff) FROM kept),
                              now() - make_interval(secs => $2::double precision))
        ORDER BY x.at
        LIMIT $1::integer)
    RETURNING 1
)
SELECT (SELECT count(*) FROM old_rollups)::integer AS rollups,
       (SELECT count(*) FROM old_queue_samples)::integer AS queue_samples,
       (SELECT count(*) FROM old_fleet_samples)::integer AS fleet_samples;
