-- compatible: previous
-- Dashboard sessions that were logged out, shared by every API process.
--
-- A session cookie is checked without the database (its signature and expiry), so a
-- logout used to be known only to the process that served it: behind a load balancer,
-- a copy of the cookie still worked on the other replicas until it expired. A logout now
-- records the session id here, until the session would have expired anyway, and every
-- API process keeps the live rows in memory (read when it starts listening, kept up by
-- a notification on each logout). Additive: the previous code ignores the table.

CREATE TABLE /*schema*/revoked_sessions (
    id         text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    expires_at timestamptz NOT NULL
);
-- Rows past their expiry are deleted by the next logout.
CREATE INDEX revoked_sessions_expiry ON /*schema*/revoked_sessions (expires_at);
