-- compatible: previous
-- The finished-job counters are locked in one order by every statement.
--
-- history_inserted and history_deleted upsert one history_counts row per queue and state
-- of the statement, in the backend's shard. The rows came in the order of the grouping,
-- which nothing fixes: two backends of one shard ending jobs of the same queues in one
-- statement each could lock the same two rows in opposite orders and deadlock (one
-- statement aborted, its results retried by the worker). Ordered by queue and state,
-- they always lock in the same order, as the rollups of 0010 already do. The functions
-- are otherwise those of 0007 and 0001; the previous code runs on them unchanged.

CREATE OR REPLACE FUNCTION /*schema*/history_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO /*schema*/history_counts AS c (queue, state, shard, n, total, last_at)
    SELECT queue, state, pg_backend_pid() % 8, count(*), count(*), now()
    FROM new_rows GROUP BY queue, state
    ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE
    SET n = c.n + excluded.n, total = c.total + excluded.total,
        last_at = greatest(c.last_at, excluded.last_at);

    PERFORM pg_notify('/*channel*/events', json_build_object(
                'state', state, 'ids', ids, 'batch_ids', batch_ids)::text)
    FROM (
        SELECT state, array_agg(id ORDER BY id) AS ids,
               coalesce(array_agg(DISTINCT batch_id) FILTER (WHERE batch_id IS NOT NULL),
                        '{}') AS batch_ids
        FROM (
            SELECT state, id, batch_id,
                   (row_number() OVER (PARTITION BY state ORDER BY id) - 1) / 500 AS chunk
            FROM new_rows
        ) finished
        GROUP BY state, chunk
    ) c;

    PERFORM pg_notify('/*channel*/cancel', json_build_object('ids', ids)::text)
    FROM (
        SELECT array_agg(id) AS ids FROM new_rows
        WHERE state = 'cancelled' AND worker_id IS NOT NULL
        HAVING count(*) > 0
    ) c;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION /*schema*/history_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO /*schema*/history_counts AS c (queue, state, shard, n)
    SELECT queue, state, pg_backend_pid() % 8, -count(*) FROM old_rows GROUP BY queue, state
    ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;
