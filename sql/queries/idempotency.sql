-- Idempotency keys of the HTTP API (table idempotency_keys, migration 0004).

-- name: claim_idempotency_key
-- Claim key $2 of client $1 for a request with fingerprint $3. A new key, or one older than
-- $4 seconds, is (re)taken and returns a row; a live key returns no row (and stays locked
-- by this transaction). A concurrent claim of the same key waits here for the first
-- transaction to end.
INSERT INTO /*schema*/idempotency_keys AS k (principal, key, fingerprint)
VALUES ($1::text, $2::text, $3::text)
ON CONFLICT (principal, key) DO UPDATE
SET fingerprint = excluded.fingerprint, status = NULL, response = NULL, created_at = now()
WHERE k.created_at < now() - make_interval(secs => $4::double precision)
RETURNING true AS claimed;

-- name: get_idempotency_key
-- The stored request fingerprint and response of a live key.
SELECT fingerprint, status, response
FROM /*schema*/idempotency_keys
WHERE principal = $1::text AND key = $2::text;

-- name: store_idempotency_response
-- Remember the response given to the request that claimed the key.
UPDATE /*schema*/idempotency_keys
SET status = $3::smallint, response = $4::text
WHERE principal = $1::text AND key = $2::text;

-- name: delete_expired_idempotency_keys
-- Forget up to $2 keys older than $1 seconds, oldest first.
DELETE FROM /*schema*/idempotency_keys
WHERE (principal, key) IN (
    SELECT principal, key FROM /*schema*/idempotency_keys
    WHERE created_at < now() - make_interval(secs => $1::double precision)
    ORDER BY created_at
    LIMIT $2::integer
)
RETURNING key;
