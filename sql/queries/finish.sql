-- Ending jobs. A job that ends leaves the hot table for history in the same statement:
-- DELETE ... RETURNING feeds INSERT INTO history, so a job is always in exactly one of them.

-- fragment: job_columns
-- The columns of jobs and of history (the same table shape), written once: every
-- statement below that moves a job between them lists them as /*job_columns*/ and
-- selects /*job_columns: ...*/ with only what changes on the way.
id, queue, state, priority, data, start_after, attempt, retry_limit, retry_delay_seconds,
retry_backoff, retry_delay_max_seconds, run_timeout_seconds, singleton_key, batch_id,
progress, progress_message, output, error_message, error_traceback, worker_id,
origin_id, origin_queue, created_at, started_at, heartbeat_at, completed_at, crash_count

-- name: complete_jobs
-- Complete active jobs with their outputs ($1 ids, $2 outputs; $3 the worker that must hold
-- them, or NULL for any). Returns the ids completed and their batches.
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::jsonb[]) AS i(id, output)
),
done AS (
    DELETE FROM /*schema*/jobs j
    USING input i
    WHERE j.id = i.id AND j.state = 'active' AND ($3::text IS NULL OR j.worker_id = $3::text)
    RETURNING j.*, i.output AS new_output
)
INSERT INTO /*schema*/history (/*job_columns*/)
SELECT /*job_columns: state='completed', progress=100, output=new_output, completed_at=now()*/
FROM done
RETURNING id, batch_id;

-- name: fail_jobs
-- Fail active jobs ($1 ids, $2 messages, $3 tracebacks, $4 whether a retry is allowed;
-- $5 the worker that must hold them, or NULL). A job with attempts left goes to retry
-- after its backoff delay; the others end as failed, and a copy of each goes to its
-- queue's dead-letter queue when it names one. Returns one row per job handled.
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::boolean[])
             AS i(id, message, traceback, may_retry)
),
retried AS (
    UPDATE /*schema*/jobs j
    SET state = 'retry',
        start_after = now() + make_interval(secs => /*schema*/retry_delay(
            j.attempt, j.retry_delay_seconds, j.retry_backoff, j.retry_delay_max_seconds)),
        error_message = i.message, error_traceback = i.traceback,
        worker_id = NULL, heartbeat_at = NULL
    FROM input i
    WHERE j.id = i.id AND j.state = 'active' AND ($5::text IS NULL OR j.worker_id = $5::text)
      AND i.may_retry AND j.attempt <= j.retry_limit
    RETURNING j.id, j.batch_id, j.start_after
),
failed AS (
    DELETE FROM /*schema*/jobs j
    USING input i
    WHERE j.id = i.id AND j.state = 'active' AND ($5::text IS NULL OR j.worker_id = $5::text)
      AND NOT (i.may_retry AND j.attempt <= j.retry_limit)
    RETURNING j.*, i.message, i.traceback
),
archived AS (
    INSERT INTO /*schema*/history (/*job_columns*/)
    SELECT /*job_columns: state='failed', error_message=message, error_traceback=traceback,
                          completed_at=now()*/
    FROM failed
    RETURNING id, batch_id
),
dead AS (
    INSERT INTO /*schema*/jobs (
        queue, data, priority, retry_limit, retry_delay_seconds, retry_backoff,
        retry_delay_max_seconds, run_timeout_seconds, error_message, error_traceback,
        origin_id, origin_queue)
    SELECT dq.name, f.data, f.priority, dq.retry_limit, dq.retry_delay_seconds,
           dq.retry_backoff, dq.retry_delay_max_seconds, dq.run_timeout_seconds,
           f.message, f.traceback, f.id, f.queue
    FROM failed f
    JOIN /*schema*/queues q ON q.name = f.queue
    JOIN /*schema*/queues dq ON dq.name = q.dead_letter
    RETURNING origin_id, id
)
SELECT r.id, 'retry' AS state, r.batch_id, r.start_after, NULL::bigint AS dead_letter_id
FROM retried r
UNION ALL
SELECT a.id, 'failed', a.batch_id, NULL, d.id
FROM archived a LEFT JOIN dead d ON d.origin_id = a.id;

-- name: cancel_jobs
-- Cancel waiting or active jobs, or with $2 waiting ones only (a job that a fetch claims
-- meanwhile is re-checked once the fetch commits, and left to run). Workers running one
-- hear of it on the cancel channel.
WITH done AS (
    DELETE FROM /*schema*/jobs
    WHERE id = ANY($1::bigint[]) AND NOT ($2::boolean AND state = 'active')
    RETURNING *
)
INSERT INTO /*schema*/history (/*job_columns*/)
SELECT /*job_columns: state='cancelled', completed_at=now()*/
FROM done
RETURNING id, batch_id;

-- name: resume_jobs
-- Send failed or cancelled jobs back to waiting with fresh attempt and crash counts. Raises a unique
-- violation (and moves nothing) when another job now holds one's singleton key.
WITH moved AS (
    DELETE FROM /*schema*/history
    WHERE id = ANY($1::bigint[]) AND state IN ('failed', 'cancelled')
    RETURNING *
)
INSERT INTO /*schema*/jobs (/*job_columns*/)
SELECT /*job_columns: state='created', start_after=now(), attempt=0, progress=0,
                      progress_message=NULL, output=NULL, worker_id=NULL, started_at=NULL,
                      heartbeat_at=NULL, completed_at=NULL, crash_count=0*/
FROM moved
RETURNING id, batch_id;

-- name: delete_jobs
-- Delete waiting and finished jobs (an active job must be cancelled first).
WITH waiting AS (
    DELETE FROM /*schema*/jobs WHERE id = ANY($1::bigint[]) AND state <> 'active'
    RETURNING id, batch_id
),
finished AS (
    DELETE FROM /*schema*/history WHERE id = ANY($1::bigint[]) RETURNING id, batch_id
)
SELECT id, batch_id FROM waiting
UNION ALL
SELECT id, batch_id FROM finished;

-- name: waiting_job_ids
-- Up to $2 waiting jobs (created or retry, delayed ones too) of queue $1 with ids up to $3
-- (the jobs there when a cancel of them all began, so a steady inflow cannot keep it
-- going). Reads the queue's waiting jobs through the partial index jobs_fetch.
SELECT id FROM /*schema*/jobs
WHERE queue = $1::text AND state IN ('created', 'retry') AND id <= $3::bigint
LIMIT $2::integer;

-- name: last_job_id
-- The last job id handed out (jobs sent later have larger ids).
SELECT last_value FROM /*schema*/jobs_id_seq;
