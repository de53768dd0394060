"""Migrations: concurrent runs, version checks, and every named query against the schema."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import pytest

from shared.migrate import SchemaError, current_version, ensure_schema, latest_version, migrate
from shared.sql import Queries, _raw_queries

ROOT = Path(__file__).resolve().parents[2]


async def test_five_concurrent_migrations_leave_one_correct_schema(db_url: str) -> None:
    queries = Queries.load("fresh_schema")
    conns = [await asyncpg.connect(db_url) for _ in range(5)]
    try:
        applied = await asyncio.gather(*(migrate(c, queries) for c in conns))
        assert sorted(v for run in applied for v in run) == list(range(1, latest_version() + 1))
        assert await current_version(conns[0], queries) == latest_version()
        rows = await conns[0].fetch('SELECT version FROM "fresh_schema".schema_version')
        assert sorted(r["version"] for r in rows) == list(range(1, latest_version() + 1))
        assert await migrate(conns[0], queries) == []
    finally:
        for conn in conns:
            await conn.close()


async def test_ensure_schema_refuses_or_migrates_an_old_schema(db_url: str) -> None:
    queries = Queries.load("old_schema")
    conn = await asyncpg.connect(db_url)
    try:
        with pytest.raises(SchemaError, match="python -m shared.migrate"):
            await ensure_schema(conn, queries, auto_migrate=False)
        assert await ensure_schema(conn, queries, auto_migrate=True) == latest_version()
        await conn.execute(
            "INSERT INTO \"old_schema\".schema_version (version, name) VALUES (9999, 'future')")
        with pytest.raises(SchemaError, match="newer than this code"):
            await ensure_schema(conn, queries, auto_migrate=True)
    finally:
        await conn.close()


def single_statement(sql: str) -> bool:
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    body = re.sub(r"\$\$.*?\$\$", "", body, flags=re.S)
    return body.strip().rstrip(";").count(";") == 0


async def test_every_named_query_prepares_against_the_migrated_schema(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    queries = Queries.load("ms8jobs")
    try:
        for name, sql in queries.by_name.items():
            if single_statement(sql):
                try:
                    await conn.prepare(sql)
                except asyncpg.PostgresError as error:
                    pytest.fail(f"query {name} does not prepare: {error}")
    finally:
        await conn.close()


def test_every_named_query_is_used_by_the_code() -> None:
    code = "\n".join(
        path.read_text()
        for folder in ("shared", "api", "worker", "scheduler")
        if (ROOT / folder).exists()
        for path in (ROOT / folder).rglob("*.py")
    )
    unused = [name for name in _raw_queries() if not re.search(
        rf"\bqueries\.{name}\b|queries\[\"{name}\"\]", code)]
    assert unused == [], f"queries defined in sql/queries but used nowhere: {unused}"
