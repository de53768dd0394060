"""Is a transaction-mode pooler (PgBouncer) between this process and PostgreSQL?

Behind PgBouncer in transaction (or statement) mode, each transaction may run in another
server session. Two things then break unless configured for it:

- asyncpg's cache of named prepared statements: a statement prepared in one session is
  missing, or already taken, in the next (``MS8_PGBOUNCER=true`` turns the cache off);
- LISTEN and session advisory locks (NOTIFY wake-ups, maintenance leadership, the
  migration lock): they need a session of their own, ``DATABASE_DIRECT_URL`` straight
  to PostgreSQL.

Detection: two client connections, opened together, ask for their server's backend pid.
Straight to PostgreSQL, or through a session-mode pooler, each has its own backend; a
transaction-mode pooler hands the second the backend the first just released (PgBouncer
reuses the most recent idle one). The same pid twice is proof. Different pids are no
proof of the opposite (a pooler choosing servers round-robin could hide), which is why
the settings exist and the probe only backs them up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from shared.conn import Conn
from shared.logging import get_logger
from shared.settings import Settings
from shared.sql import Queries

log = get_logger(__name__)

# A pooler moving a client between sessions mid-way shows up as one of these.
_SESSION_MOVED = (asyncpg.DuplicatePreparedStatementError,
                  asyncpg.InvalidSQLStatementNameError)


class PoolerError(RuntimeError):
    """The database URLs lead to a transaction-mode pooler the settings do not allow for."""


async def shares_sessions(
    connect: Callable[[], Awaitable[Conn]], queries: Queries,
) -> bool:
    """True when two connections from ``connect`` share one PostgreSQL session."""
    first = await connect()
    try:
        second = await connect()
        try:
            pids = [await conn.fetchval(queries.backend_pid) for conn in (first, second)]
        except _SESSION_MOVED:
            return True
        finally:
            await second.close()
    finally:
        await first.close()
    return pids[0] == pids[1]


async def check(
    settings: Settings, queries: Queries, *, pool: Callable[[], Awaitable[Conn]],
    direct: Callable[[], Awaitable[Conn]], same_url: bool, sessions: bool,
    fix: str = "",
) -> None:
    """Raise ``PoolerError`` naming the fix when a pooler is in the way of what this
    process does: its queries (``pool``) and, when ``sessions``, its LISTEN and session
    locks (``direct``). ``fix`` is one more way out (the worker's ``--poll-only``)."""
    pooled = await shares_sessions(pool, queries)
    if pooled and settings.statement_cache:
        raise PoolerError(
            "DATABASE_URL leads to a pooler in transaction mode (two connections got the "
            "same PostgreSQL session) and MS8_PGBOUNCER is not set: set MS8_PGBOUNCER=true "
            "(prepared statements cannot be cached through it)"
            + ("" if settings.direct_url else
               ", and DATABASE_DIRECT_URL to PostgreSQL itself for LISTEN and session locks"))
    if not sessions:
        return
    if same_url:
        direct_pooled = pooled
    else:
        direct_pooled = await shares_sessions(direct, queries)
    if direct_pooled:
        where = ("DATABASE_DIRECT_URL leads to a pooler in transaction mode too"
                 if settings.direct_url else
                 "DATABASE_DIRECT_URL is not set and DATABASE_URL leads to a pooler in "
                 "transaction mode")
        raise PoolerError(
            f"{where}: LISTEN and session locks need a session of their own; set "
            f"DATABASE_DIRECT_URL to PostgreSQL itself, bypassing the pooler{fix}")
    if pooled:
        log.info("transaction-mode pooler for queries, direct sessions for LISTEN and locks")
