-- compatible: previous
-- The worker registry: one row per running worker process, so that operators (and the
-- dashboard) can see the fleet, and maintenance can forget workers that stopped
-- reporting. A row is written when a worker starts, touched every minute or so, and
-- deleted when it stops; a worker killed without a chance to say so is forgotten by
-- maintenance once its last_seen_at is old enough.
--
-- Liveness of *jobs* never depends on this table: a job is reclaimed from a dead worker
-- by its own stale heartbeat_at (see the lost_jobs query), not by the registry.
--
-- Maintenance leadership is a session advisory lock held on a direct connection (see
-- sql/queries/maintenance.sql), so it needs no table.

CREATE TABLE /*schema*/workers (
    id              text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    host            text NOT NULL,
    pid             integer NOT NULL,
    -- {queue name: concurrency} of the queues this worker runs.
    queues          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(queues) = 'object'),
    concurrency     integer NOT NULL CHECK (concurrency >= 0),
    started_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now()
);
