-- Logged-out dashboard sessions (table revoked_sessions, migration 0009).

-- name: revoke_session
-- Log session $1 out on every API process until $2 (epoch seconds: when it would have
-- expired anyway), forget revocations past their expiry, and tell every API process
-- (the notification goes out at commit, with the row).
WITH forgotten AS (
    DELETE FROM /*schema*/revoked_sessions WHERE expires_at <= now()
),
revoked AS (
    INSERT INTO /*schema*/revoked_sessions (id, expires_at)
    VALUES ($1::text, to_timestamp($2::double precision))
    ON CONFLICT (id) DO NOTHING
)
SELECT pg_notify('/*channel*/sessions',
                 json_build_object('id', $1::text, 'expires', $2::double precision)::text);

-- name: revoked_sessions
-- The sessions logged out and not expired yet: (id, expiry in epoch seconds).
SELECT id, extract(epoch FROM expires_at)::double precision AS expires
FROM /*schema*/revoked_sessions
WHERE expires_at > now();
