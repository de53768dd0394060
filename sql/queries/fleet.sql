-- The worker fleet as operators see it (the registry table is the worker's, migration 0002).

-- name: active_jobs_by_worker
-- How many active jobs each worker holds (the hot table's active jobs only).
SELECT worker_id, count(*)::integer AS n
FROM /*schema*/jobs
WHERE state = 'active'
GROUP BY worker_id;
