"""The MS8 domain: analytics collected per user-role from the microservices, every night
and on demand.

- ``settings``    the sources (name → base URL) and how to call them
- ``models``      user-roles, snapshots, nightly runs as frozen dataclasses
- ``user_roles``  seeding and paging the user-roles
- ``snapshots``   one snapshot per user-role and day, written by upsert
- ``breaker``     a circuit breaker per source (pure state machine)
- ``limiter``     a source's concurrency limit, waiters in by priority
- ``collect``     one user-role's analytics from every source, concurrently
- ``fanout``      the nightly fan-out, idempotent per night
- ``runs``        the nightly runs and their summaries
- ``fresh``       fresh data for one user-role on demand, ahead of the batch

Its tables live in ``<MS8_SCHEMA>_analytics``; it uses the queue only through
``shared.queue`` (the core never imports this package).
"""
