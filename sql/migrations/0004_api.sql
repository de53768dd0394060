-- compatible: previous
-- Idempotency keys of the HTTP API: a client that sends a job with an Idempotency-Key
-- header and retries (a timeout, a lost reply) gets the first response back instead of a
-- second job. A key is remembered for a day per client (the API key's name), with a
-- fingerprint of the request, so the same key with a different request is refused.
--
-- A key is claimed, the jobs are sent and the response is stored in one transaction: a
-- concurrent request with the same key waits on the primary key until that transaction
-- ends, then sees the stored response (or, if it rolled back, claims the key itself).

CREATE TABLE /*schema*/idempotency_keys (
    principal   text NOT NULL,
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    fingerprint text NOT NULL,
    status      smallint,
    response    text,  -- the JSON body, byte for byte as first sent
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
-- Expired keys are deleted in small chunks, oldest first.
CREATE INDEX idempotency_keys_created ON /*schema*/idempotency_keys (created_at);
