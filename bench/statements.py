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
    by_query: dict[str, int]  # calls per statement text (pg_stat_statements only)

    def issued_since(self, before: Counts) -> dict[str, int]:
        """Calls per statement between ``before`` and now, most called first."""
        delta = {q: n - before.by_query.get(q, 0) for q, n in self.by_query.items()}
        return dict(sorted(((q, n) for q, n in delta.items() if n > 0),
                           key=lambda item: -item[1]))


async def reset(admin: asyncpg.Connection, has_statements: bool, *, owned: bool) -> None:
    """Forget statement statistics (entries of dropped databases included), on the run's
    own server only: a shared server's statistics are its users' (each measurement's
    database is new, so its entries start from nothing anyway)."""
    if has_statements and owned:
        await admin.execute("SELECT pg_stat_statements_reset()")


async def sample(admin: asyncpg.Connection, database: str, has_statements: bool) -> Counts:
    statements = None
    by_query: dict[str, int] = {}
    if has_statements:
        rows = await admin.fetch(
            "SELECT s.query, sum(s.calls)::bigint AS calls FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 GROUP BY s.query",
            database)
        by_query = {_short(row["query"]): row["calls"] for row in rows}
        statements = sum(by_query.values())
    transactions = await admin.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", database)
    rows = await admin.fetch(
        "SELECT coalesce(nullif(application_name, ''), backend_type) AS who, count(*) AS n "
        "FROM pg_stat_activity WHERE datname = $1 GROUP BY 1", database)
    return Counts(statements, transactions or 0, {row["who"]: row["n"] for row in rows},
                  by_query)


def _short(query: str, width: int = 70) -> str:
    """The statement's first words, comments and line breaks left out."""
    lines = [line.strip() for line in query.splitlines()
             if line.strip() and not line.strip().startswith("--")]
    text = " ".join(lines)
    return text if len(text) <= width else text[:width - 1] + "…"


async def time_by_query(admin: asyncpg.Connection, database: str) -> dict[str, tuple[int, float]]:
    """{statement: (calls, milliseconds executing)} so far in ``database``
    (``pg_stat_statements``; empty without it)."""
    try:
        rows = await admin.fetch(
            "SELECT s.query, sum(s.calls)::bigint AS calls, sum(s.total_exec_time) AS ms "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = $1 GROUP BY s.query", database)
    except asyncpg.UndefinedTableError:
        return {}
    spent: dict[str, tuple[int, float]] = {}
    for row in rows:
        calls, ms = spent.get(_short(row["query"]), (0, 0.0))
        spent[_short(row["query"])] = (calls + row["calls"], ms + row["ms"])
    return spent


def busiest(before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]],
            limit: int = 10) -> list[tuple[str, int, float]]:
    """(statement, calls, milliseconds) between two readings, most time first."""
    delta = [(q, calls - before.get(q, (0, 0.0))[0], ms - before.get(q, (0, 0.0))[1])
             for q, (calls, ms) in after.items()]
    return sorted((d for d in delta if d[1] > 0), key=lambda d: -d[2])[:limit]
