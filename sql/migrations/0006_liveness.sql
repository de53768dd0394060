-- compatible: previous
-- Worker liveness and crash counting.
--
-- A worker holds a session advisory lock, worker_lock_key(id), on a direct connection for
-- its whole life and says so in the registry (workers.session_lock). PostgreSQL releases
-- the lock the moment the session ends, however it ends, so maintenance sees a killed
-- worker at once (pg_locks) and hands its active jobs back instead of waiting for their
-- heartbeats to go stale. Workers of the previous code register without the flag and
-- are left to the stall timeout, as before.
--
-- A job taken back from a dead or stalled worker is not the job's fault: it does not
-- spend an attempt, it counts a crash. A job that has crashed its queue's crash_limit
-- workers (a poison job) fails. The counter is added to jobs and history alike, last in
-- both, so that their columns stay in the same order.

ALTER TABLE /*schema*/jobs ADD COLUMN crash_count integer NOT NULL DEFAULT 0;
ALTER TABLE /*schema*/history ADD COLUMN crash_count integer NOT NULL DEFAULT 0;

ALTER TABLE /*schema*/queues
    ADD COLUMN crash_limit integer NOT NULL DEFAULT 5 CHECK (crash_limit BETWEEN 1 AND 1000);

ALTER TABLE /*schema*/workers ADD COLUMN session_lock boolean NOT NULL DEFAULT false;

-- The key of the session lock that worker `id` holds while it lives (per schema).
CREATE FUNCTION /*schema*/worker_lock_key(id text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtextextended('ms8-jobs worker /*channel*/' || id, 0)
$$;
