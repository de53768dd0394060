-- compatible: previous
-- Finished-job counters that only go up, for monitoring.
--
-- history_counts.n is how many finished jobs history holds now: pruning, deleting and
-- resuming take it down again, so it cannot be exported as a Prometheus counter. total
-- counts every arrival in history (a job that is resumed and ends again counts twice),
-- and last_at is when the latest one arrived. Both are kept by the same upsert that
-- already maintains n, so finishing a job writes nothing more than before. Additive: the
-- previous code's statements keep the columns up to date through the trigger.
--
-- A migration that replaces history_inserted again must keep total and last_at.

ALTER TABLE /*schema*/history_counts
    ADD COLUMN total bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_at timestamptz;
-- What history holds is all that is known of the past: the counters start from there.
UPDATE /*schema*/history_counts SET total = n;

CREATE OR REPLACE FUNCTION /*schema*/history_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO /*schema*/history_counts AS c (queue, state, shard, n, total, last_at)
    SELECT queue, state, pg_backend_pid() % 8, count(*), count(*), now()
    FROM new_rows GROUP BY queue, state
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
