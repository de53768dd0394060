-- name: send_job
-- Insert one job, taking its queue's policy for every option left NULL. Returns no row when
-- the singleton key is taken by a waiting or active job, or when the queue does not exist.
INSERT INTO /*schema*/jobs (
    queue, data, priority, start_after, retry_limit, retry_delay_seconds, retry_backoff,
    retry_delay_max_seconds, run_timeout_seconds, singleton_key, batch_id)
SELECT q.name, $2::jsonb, $3::smallint,
       coalesce($4::timestamptz, now() + make_interval(secs => $5::double precision)),
       coalesce($6::integer, q.retry_limit),
       coalesce($7::double precision, q.retry_delay_seconds),
       coalesce($8::boolean, q.retry_backoff),
       coalesce($9::double precision, q.retry_delay_max_seconds),
       coalesce($10::double precision, q.run_timeout_seconds),
       $11::text, $12::bigint
FROM /*schema*/queues q
WHERE q.name = $1::text
ON CONFLICT (queue, singleton_key) WHERE singleton_key IS NOT NULL DO NOTHING
RETURNING id;

-- name: send_conflict
-- Why send_job returned nothing: the job holding the singleton key, and whether the queue exists.
SELECT (SELECT id FROM /*schema*/jobs WHERE queue = $1::text AND singleton_key = $2::text)
           AS existing_id,
       EXISTS (SELECT 1 FROM /*schema*/queues WHERE name = $1::text) AS queue_exists;

-- name: send_jobs
-- Insert many jobs in one statement from parallel arrays (one element per job). Ids are
-- drawn first so that the result lists them in input order: ids[i] belongs to job i, and
-- inserted[i] is false where a waiting or active job already held its singleton key.
WITH input AS MATERIALIZED (
    SELECT nextval('/*schema*/jobs_id_seq') AS id, i.*
    FROM unnest($1::text[], $2::jsonb[], $3::smallint[], $4::timestamptz[],
                $5::double precision[], $6::integer[], $7::double precision[], $8::boolean[],
                $9::double precision[], $10::double precision[], $11::text[])
         WITH ORDINALITY AS i(queue, data, priority, start_after, delay, retry_limit,
                              retry_delay, retry_backoff, retry_delay_max, run_timeout,
                              singleton_key, ord)
),
inserted AS (
    INSERT INTO /*schema*/jobs (
        id, queue, data, priority, start_after, retry_limit, retry_delay_seconds,
        retry_backoff, retry_delay_max_seconds, run_timeout_seconds, singleton_key, batch_id)
    SELECT i.id, i.queue, i.data, i.priority,
           coalesce(i.start_after, now() + make_interval(secs => i.delay)),
           coalesce(i.retry_limit, q.retry_limit),
           coalesce(i.retry_delay, q.retry_delay_seconds),
           coalesce(i.retry_backoff, q.retry_backoff),
           coalesce(i.retry_delay_max, q.retry_delay_max_seconds),
           coalesce(i.run_timeout, q.run_timeout_seconds),
           i.singleton_key, $12::bigint
    FROM input i JOIN /*schema*/queues q ON q.name = i.queue
    ORDER BY i.ord
    ON CONFLICT (queue, singleton_key) WHERE singleton_key IS NOT NULL DO NOTHING
    RETURNING id
)
SELECT array_agg(i.id ORDER BY i.ord) AS ids,
       array_agg(ins.id IS NOT NULL ORDER BY i.ord) AS inserted
FROM input i LEFT JOIN inserted ins ON ins.id = i.id;

-- name: singleton_holders
-- The waiting or active jobs holding these (queue, singleton key) pairs.
SELECT j.queue, j.singleton_key, j.id
FROM unnest($1::text[], $2::text[]) AS k(queue, singleton_key)
JOIN /*schema*/jobs j ON j.queue = k.queue AND j.singleton_key = k.singleton_key;

-- name: reserve_job_ids
-- Draw $1 job ids in order, and the transaction's clock, for a COPY of many jobs.
SELECT array(SELECT nextval('/*schema*/jobs_id_seq') FROM generate_series(1, $1::integer))
           AS ids,
       now() AS now;

-- name: prepare_plain_copy
-- For a COPY of $2 jobs to the queues $1, in one round trip: create the queues missing
-- (default policy), and return $2 job ids drawn in order with each queue's policy as
-- parallel arrays. A queue another transaction created meanwhile is not in its snapshot
-- and so missing from the arrays: the caller reads its policy with queue_policies.
WITH created AS (
    INSERT INTO /*schema*/queues (name)
    SELECT DISTINCT unnest($1::text[])
    ON CONFLICT (name) DO NOTHING
    RETURNING name, retry_limit, retry_delay_seconds, retry_backoff, retry_delay_max_seconds,
              run_timeout_seconds
),
policies AS (
    SELECT * FROM created
    UNION ALL
    SELECT name, retry_limit, retry_delay_seconds, retry_backoff, retry_delay_max_seconds,
           run_timeout_seconds
    FROM /*schema*/queues WHERE name = ANY($1::text[])
)
SELECT array(SELECT nextval('/*schema*/jobs_id_seq') FROM generate_series(1, $2::integer))
           AS ids,
       array_agg(name) AS names, array_agg(retry_limit) AS retry_limits,
       array_agg(retry_delay_seconds) AS retry_delays, array_agg(retry_backoff) AS backoffs,
       array_agg(retry_delay_max_seconds) AS retry_delay_maxes,
       array_agg(run_timeout_seconds) AS run_timeouts
FROM policies;
