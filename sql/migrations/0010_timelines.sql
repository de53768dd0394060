-- compatible: previous
-- How the numbers moved over time: finished jobs per minute, queue depth and fleet load
-- sampled every minute, and the analytics sources' breaker openings.
--
-- job_rollups: one row per (queue, minute, final state, shard), kept by a statement
-- trigger on history, so the statement that ends jobs counts them in the same
-- transaction: a rollup is exact, never a guess, and reading a day of it never touches
-- history. A row holds the count, the sums and maxima of run time (completed_at -
-- started_at) and wait (started_at - start_after: from due to the start of the last
-- attempt), and both as counts per bucket of rollup_bounds(), from which percentiles
-- are estimated. Like history_counts, rows are spread over eight shards by backend, so
-- that the completers of one minute do not queue up on one row; a value is the sum of
-- its shards. The rows of one statement are upserted in key order, so two backends of
-- one shard lock them in the same order. Rollups count arrivals: pruning, deleting or
-- resuming a job in history takes nothing away (a job resumed and ended again counts
-- twice, at both ends).
--
-- A trigger of its own rather than more lines in history_inserted: the two read the
-- same transition table (PostgreSQL fills it once for both), and a migration that
-- replaces history_inserted again cannot lose the rollups. Triggers fire in name order:
-- history_inserted, then history_rolled_up, so every backend locks its history_counts
-- row before its rollup row.
--
-- queue_samples and fleet_samples: what the maintenance leader sees every
-- MS8_SAMPLE_SECONDS (waiting and active jobs and the oldest due job's age per queue;
-- live workers, their slots and the busy ones: a worker's active jobs, at most its
-- concurrency, since a job whose result is still being reported holds no slot). Keyed by the time of the sample: two
-- leaders for a moment write two samples, which the readers' maxima per bucket absorb.
--
-- All three are pruned with history, past each queue's retention but never within a
-- day (so the dashboard's last 24 hours are always whole), by the pruner.
--
-- breaker_openings (the MS8 domain's): a source's circuit breaker opening in one worker
-- process, as that worker saw it, so that a night's outages can be drawn on a time line
-- (breakers live in worker memory).
--
-- Additive: the previous code ignores the new tables, and its statements keep the
-- rollups up to date through the trigger.

-- Upper bounds (seconds) of the run-time and wait buckets: bucket 0 is below 10 ms,
-- bucket i is [bounds[i], bounds[i+1]), bucket 14 is 30 minutes and more. Fixed: the
-- stored arrays are positions in this list (shared/queue/rollups.py repeats it).
CREATE FUNCTION /*schema*/rollup_bounds() RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '{0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,1800}'::double precision[]
$$;

-- Element-wise sum of two bucket arrays; sum_counts adds up a column of them.
CREATE FUNCTION /*schema*/add_counts(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i)
    FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i)
$$;
CREATE AGGREGATE /*schema*/sum_counts(bigint[]) (
    SFUNC = /*schema*/add_counts, STYPE = bigint[]
);

CREATE TABLE /*schema*/job_rollups (
    queue           text NOT NULL,
    minute          timestamptz NOT NULL,
    state           /*schema*/job_state NOT NULL,
    shard           smallint NOT NULL,
    n               bigint NOT NULL,
    run_seconds     double precision NOT NULL,   -- sum, over the jobs that had started
    run_max         double precision,
    run_buckets     bigint[] NOT NULL,
    wait_seconds    double precision NOT NULL,
    wait_max        double precision,
    wait_buckets    bigint[] NOT NULL,
    PRIMARY KEY (queue, minute, state, shard)
)
-- The current minute's rows are updated by every completion statement: room on the page
-- for HOT updates (no index changes), and vacuum that keeps up.
WITH (
    fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
-- Reading a time range across every queue (the dashboard's overview).
CREATE INDEX job_rollups_minute ON /*schema*/job_rollups (minute);

CREATE FUNCTION /*schema*/history_rolled_up() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bounds double precision[] := /*schema*/rollup_bounds();
BEGIN
    INSERT INTO /*schema*/job_rollups AS r (
        queue, minute, state, shard, n, run_seconds, run_max, run_buckets,
        wait_seconds, wait_max, wait_buckets)
    SELECT queue, minute, state, pg_backend_pid() % 8, count(*),
           coalesce(sum(run), 0), max(run),
           ARRAY[count(*) FILTER (WHERE rb = 0), count(*) FILTER (WHERE rb = 1),
                 count(*) FILTER (WHERE rb = 2), count(*) FILTER (WHERE rb = 3),
                 count(*) FILTER (WHERE rb = 4), count(*) FILTER (WHERE rb = 5),
                 count(*) FILTER (WHERE rb = 6), count(*) FILTER (WHERE rb = 7),
                 count(*) FILTER (WHERE rb = 8), count(*) FILTER (WHERE rb = 9),
                 count(*) FILTER (WHERE rb = 10), count(*) FILTER (WHERE rb = 11),
                 count(*) FILTER (WHERE rb = 12), count(*) FILTER (WHERE rb = 13),
                 count(*) FILTER (WHERE rb = 14)],
           coalesce(sum(wait), 0), max(wait),
           ARRAY[count(*) FILTER (WHERE wb = 0), count(*) FILTER (WHERE wb = 1),
                 count(*) FILTER (WHERE wb = 2), count(*) FILTER (WHERE wb = 3),
                 count(*) FILTER (WHERE wb = 4), count(*) FILTER (WHERE wb = 5),
                 count(*) FILTER (WHERE wb = 6), count(*) FILTER (WHERE wb = 7),
                 count(*) FILTER (WHERE wb = 8), count(*) FILTER (WHERE wb = 9),
                 count(*) FILTER (WHERE wb = 10), count(*) FILTER (WHERE wb = 11),
                 count(*) FILTER (WHERE wb = 12), count(*) FILTER (WHERE wb = 13),
                 count(*) FILTER (WHERE wb = 14)]
    FROM (
        SELECT queue, state, minute, run, wait,
               width_bucket(run, bounds) AS rb, width_bucket(wait, bounds) AS wb
        FROM (
            -- The minute of completed_at (not of now()), so that a rollup and a count of
            -- history by minute agree to the job; date_bin, unlike date_trunc, does not
            -- depend on the session's time zone.
            -- A job cancelled before it ran has neither run time nor wait (NULL, which
            -- greatest() alone would turn into 0).
            SELECT queue, state,
                   date_bin('1 minute', completed_at, timestamptz '1970-01-01 00:00+00')
                       AS minute,
                   CASE WHEN started_at IS NOT NULL THEN
                       greatest(date_part('epoch', completed_at - started_at), 0)
                   END AS run,
                   CASE WHEN started_at IS NOT NULL THEN
                       greatest(date_part('epoch', started_at - start_after), 0)
                   END AS wait
            FROM new_rows
        ) timed
        -- A fence: without it the planner copies the bucket expressions into each of the
        -- thirty FILTER clauses, and a 500-job statement computed them 15,000 times
        -- (20 ms instead of 1).
        OFFSET 0
    ) bucketed
    GROUP BY queue, minute, state
    ORDER BY queue, minute, state
    ON CONFLICT (queue, minute, state, shard) DO UPDATE
    SET n = r.n + excluded.n,
        run_seconds = r.run_seconds + excluded.run_seconds,
        run_max = greatest(r.run_max, excluded.run_max),
        run_buckets = /*schema*/add_counts(r.run_buckets, excluded.run_buckets),
        wait_seconds = r.wait_seconds + excluded.wait_seconds,
        wait_max = greatest(r.wait_max, excluded.wait_max),
        wait_buckets = /*schema*/add_counts(r.wait_buckets, excluded.wait_buckets);
    RETURN NULL;
END $$;
CREATE TRIGGER history_rolled_up AFTER INSERT ON /*schema*/history
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION /*schema*/history_rolled_up();

CREATE TABLE /*schema*/queue_samples (
    queue                   text NOT NULL,
    at                      timestamptz NOT NULL,
    waiting                 integer NOT NULL,   -- created and retry, delayed ones too
    active                  integer NOT NULL,
    oldest_waiting_seconds  double precision NOT NULL,  -- of the oldest due job; 0 if none
    PRIMARY KEY (queue, at)
);
CREATE INDEX queue_samples_at ON /*schema*/queue_samples (at);

CREATE TABLE /*schema*/fleet_samples (
    at          timestamptz PRIMARY KEY,
    workers     integer NOT NULL,   -- registered and seen lately
    slots       integer NOT NULL,   -- their concurrency, summed
    busy        integer NOT NULL    -- slots running a job (each worker's active jobs, capped)
);

CREATE TABLE /*analytics*/breaker_openings (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source      text NOT NULL CHECK (length(source) BETWEEN 1 AND 200),
    worker_id   text NOT NULL CHECK (length(worker_id) BETWEEN 1 AND 200),
    opened_at   timestamptz NOT NULL,
    -- Opened again because the probe after a cool-down failed (the source still down),
    -- rather than by consecutive failures of a closed breaker (an outage beginning).
    after_probe boolean NOT NULL
);
CREATE INDEX breaker_openings_time ON /*analytics*/breaker_openings (opened_at);
