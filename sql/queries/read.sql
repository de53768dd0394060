-- name: get_job
-- One job, wherever it is (hot table or history).
SELECT * FROM /*schema*/jobs WHERE id = $1::bigint
UNION ALL
SELECT * FROM /*schema*/history WHERE id = $1::bigint;

-- name: list_jobs
-- Jobs newest first, by optional queue ($1) and states ($2), before id $3 (keyset cursor).
SELECT * FROM (
    (SELECT * FROM /*schema*/jobs
     WHERE ($1::text IS NULL OR queue = $1::text)
       AND state = ANY($2::/*schema*/job_state[])
       AND ($3::bigint IS NULL OR id < $3::bigint)
     ORDER BY id DESC LIMIT $4::integer)
    UNION ALL
    (SELECT * FROM /*schema*/history
     WHERE ($1::text IS NULL OR queue = $1::text)
       AND state = ANY($2::/*schema*/job_state[])
       AND ($3::bigint IS NULL OR id < $3::bigint)
     ORDER BY id DESC LIMIT $4::integer)
) j
ORDER BY id DESC
LIMIT $4::integer;

-- name: count_jobs
-- Jobs per queue and state: waiting and active counted in the hot table, finished ones
-- summed from the counters the history triggers keep (never a scan of history).
SELECT queue, state::text AS state, count(*)::bigint AS n
FROM /*schema*/jobs GROUP BY queue, state
UNION ALL
SELECT queue, state::text, sum(n)::bigint
FROM /*schema*/history_counts GROUP BY queue, state HAVING sum(n) <> 0;
