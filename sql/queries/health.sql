-- name: ping
-- The cheapest round trip: health checks of long-lived connections.
SELECT 1;

-- name: backend_pid
-- The PostgreSQL session behind a connection: two connections that get the same one are
-- behind a pooler in transaction mode (shared/pooler.py).
SELECT pg_backend_pid();
