"""Counting what a database is asked to do, from outside it.

The idle-cost scenario counts the statements a worker sends to its own database. It
reads two counters from a connection to the ``postgres`` database, so that reading
them never adds to them:

- ``pg_stat_statements`` calls (top-level statements, LISTEN and other utility
  commands included), updated as each statement ends — the primary number;
- ``pg_stat_database.xact_commit + xact_rollback`` (transactions), which every server
  has, but which a backend flushes up to ~10 s late: over a short window it is rough.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Counts:
    statements: int | None
    transactions: int
    connections: dict[str, int]


async def reset(admin: asyncpg.Connection, has_statements: bool) -> None:
    """Forget statement statistics (entries of dropped databases included)."""
    if has_statements:
        await admin.execute("SELECT pg_stat_statements_reset()")


async def sample(admin: asyncpg.Connection, database: str, has_statements: bool) -> Counts:
    statements = None
    if has_statements:
        statements = await admin.fetchval(
            "SELECT coalesce(sum(s.calls), 0)::bigint FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1", database)
    transactions = await admin.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", database)
    rows = await admin.fetch(
        "SELECT coalesce(nullif(application_name, ''), backend_type) AS who, count(*) AS n "
        "FROM pg_stat_activity WHERE datname = $1 GROUP BY 1", database)
    return Counts(statements, transactions or 0, {row["who"]: row["n"] for row in rows})
