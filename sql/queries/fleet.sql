-- The worker fleet as operators see it (the registry table is the worker's, migration 0002).

-- name: active_jobs_by_worker
-- How many active jobs each worker holds (the hot table's active jobs only).
SELECT worker_id, count(*)::integer AS n
FROM /*schema*/jobs
WHERE state = 'active'
GROUP BY worker_id;

-- name: served_queues
-- The queues that some worker seen in the last $1 seconds runs. The registry holds one
-- row per worker process (tens, not thousands): reading it whole is the cheap plan.
SELECT DISTINCT q.name
FROM /*schema*/workers w, jsonb_object_keys(w.queues) AS q(name)
WHERE w.last_seen_at > now() - make_interval(secs => $1::double precision);
