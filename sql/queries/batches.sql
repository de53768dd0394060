-- name: insert_batch
INSERT INTO /*schema*/batches (name, on_complete_queue, on_complete_data)
VALUES ($1::text, $2::text, $3::jsonb)
RETURNING *;

-- name: grow_batch
-- Count $2 more children into an open batch; no row when it is unknown or sealed.
UPDATE /*schema*/batches SET total = total + $2::integer
WHERE id = $1::bigint AND NOT sealed
RETURNING id;

-- name: seal_batch
-- Close a batch to new children so that it can finish.
UPDATE /*schema*/batches SET sealed = true WHERE id = $1::bigint RETURNING id;

-- name: finish_batches
-- Finish the sealed batches among $1 that have no waiting or active child left: freeze their
-- totals and enqueue their completion job. Run after the statement that ended children has
-- committed, so that of two children ending at once the later commit always sees the other;
-- "finished_at IS NULL" makes the completion job exactly-once.
WITH ready AS (
    UPDATE /*schema*/batches b
    SET finished_at = now(),
        totals = (SELECT coalesce(jsonb_object_agg(state, n), '{}') FROM (
                     SELECT state, count(*) AS n FROM /*schema*/history h
                     WHERE h.batch_id = b.id GROUP BY state) s),
        completion_job_id = CASE WHEN b.on_complete_queue IS NOT NULL THEN
            nextval('/*schema*/jobs_id_seq') END
    WHERE b.id = ANY($1::bigint[]) AND b.sealed AND b.finished_at IS NULL
      -- Not NOT EXISTS: PostgreSQL drops an EXISTS subquery's ORDER BY, and only the
      -- newest-first walk of jobs_batch_newest stops at the first live child.
      AND (SELECT j.id FROM /*schema*/jobs j WHERE j.batch_id = b.id
           ORDER BY j.id DESC LIMIT 1) IS NULL
    RETURNING b.*
),
completion AS (
    INSERT INTO /*schema*/jobs (
        id, queue, data, retry_limit, retry_delay_seconds, retry_backoff,
        retry_delay_max_seconds, run_timeout_seconds)
    SELECT r.completion_job_id, q.name,
           coalesce(r.on_complete_data, '{}'::jsonb)
               || jsonb_build_object('batch_id', r.id, 'totals', r.totals),
           q.retry_limit, q.retry_delay_seconds, q.retry_backoff, q.retry_delay_max_seconds,
           q.run_timeout_seconds
    FROM ready r JOIN /*schema*/queues q ON q.name = r.on_complete_queue
    RETURNING id
)
SELECT r.id, r.completion_job_id FROM ready r;

-- name: unfinished_batch_ids
-- Sealed batches not finished yet (maintenance re-checks them in case a finisher died).
SELECT id FROM /*schema*/batches WHERE finished_at IS NULL AND sealed ORDER BY id LIMIT $1::integer;

-- name: get_batch
-- A batch with its totals by state: frozen when finished, counted live before.
SELECT b.*,
       coalesce(b.totals, (
           SELECT coalesce(jsonb_object_agg(state, n), '{}') FROM (
               SELECT state, count(*) AS n FROM /*schema*/jobs
               WHERE batch_id = b.id GROUP BY state
               UNION ALL
               SELECT state, count(*) FROM /*schema*/history
               WHERE batch_id = b.id GROUP BY state) s)) AS counts
FROM /*schema*/batches b
WHERE b.id = $1::bigint;

-- name: list_batches
-- Batches newest first, before id $1 (keyset cursor); totals only for finished ones.
SELECT * FROM /*schema*/batches
WHERE ($1::bigint IS NULL OR id < $1::bigint)
ORDER BY id DESC
LIMIT $2::integer;
