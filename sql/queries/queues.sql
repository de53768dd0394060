-- name: ensure_queues
-- Create queues with the default policy where they do not exist yet.
INSERT INTO /*schema*/queues (name)
SELECT DISTINCT unnest($1::text[])
ON CONFLICT (name) DO NOTHING;

-- name: get_queue
SELECT * FROM /*schema*/queues WHERE name = $1::text;

-- name: get_queue_for_update
-- The queue row, locked for a read-modify-write of its policy.
SELECT * FROM /*schema*/queues WHERE name = $1::text FOR UPDATE;

-- name: list_queues
SELECT * FROM /*schema*/queues ORDER BY name;

-- name: insert_queue
INSERT INTO /*schema*/queues (
    name, retry_limit, retry_delay_seconds, retry_backoff, retry_delay_max_seconds,
    run_timeout_seconds, retention_seconds, dead_letter, fleet_limit, paused, crash_limit)
VALUES ($1::text, $2::integer, $3::double precision, $4::boolean, $5::double precision,
        $6::double precision, $7::double precision, $8::text, $9::integer, $10::boolean,
        $11::integer)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: update_queue
UPDATE /*schema*/queues
SET retry_limit = $2::integer, retry_delay_seconds = $3::double precision,
    retry_backoff = $4::boolean, retry_delay_max_seconds = $5::double precision,
    run_timeout_seconds = $6::double precision, retention_seconds = $7::double precision,
    dead_letter = $8::text, fleet_limit = $9::integer, paused = $10::boolean,
    crash_limit = $11::integer, updated_at = now()
WHERE name = $1::text
RETURNING *;

-- name: set_queue_paused
-- Pause or resume a queue; resuming wakes the workers, since nothing else would.
WITH changed AS (
    UPDATE /*schema*/queues SET paused = $2::boolean, updated_at = now()
    WHERE name = $1::text
    RETURNING *
)
SELECT changed.*,
       CASE WHEN NOT changed.paused THEN pg_notify('/*channel*/wakeup', json_build_object(
           'queue', changed.name, 'start_after', extract(epoch FROM now()))::text) END
           AS notified
FROM changed;

-- name: redrive_jobs
-- Send up to $2 waiting dead letters of queue $1 back to the queues they came from, with
-- a fresh attempt count and the policy of that queue.
WITH picked AS (
    SELECT j.id FROM /*schema*/jobs j
    WHERE j.queue = $1::text AND j.state IN ('created', 'retry') AND j.origin_queue IS NOT NULL
    ORDER BY j.id
    LIMIT $2::integer
    FOR UPDATE SKIP LOCKED
)
UPDATE /*schema*/jobs j
SET queue = q.name, state = 'created', attempt = 0, start_after = now(),
    retry_limit = q.retry_limit, retry_delay_seconds = q.retry_delay_seconds,
    retry_backoff = q.retry_backoff, retry_delay_max_seconds = q.retry_delay_max_seconds,
    run_timeout_seconds = q.run_timeout_seconds, origin_queue = NULL
FROM picked, /*schema*/queues q
WHERE j.id = picked.id AND q.name = j.origin_queue
RETURNING j.id;

-- name: queue_policies
-- The policies of these queues (for jobs sent by COPY, which fills defaults client-side).
SELECT * FROM /*schema*/queues WHERE name = ANY($1::text[]);
