-- name: ping
-- The cheapest round trip: health checks of long-lived connections.
SELECT 1;
