"""Migrations: concurrent runs, version checks, and every named query against the schema."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from shared.migrate import SchemaError, ensure_schema, migrate
from shared.migrations import discover, latest_version, schema_status
from shared.sql import SQL_DIR, Queries, _raw_queries

ROOT = Path(__file__).resolve().parents[2]


def migrations_dir(tmp_path: Path, *extra: str, drop_last: int = 0) -> Path:
    """A copy of the project's migrations, less the last ``drop_last``, plus ``extra``
    files (their text) numbered after them."""
    folder = Path(tempfile.mkdtemp(prefix="migrations-", dir=tmp_path))
    files = sorted((SQL_DIR / "migrations").glob("*.sql"))
    files = files[: len(files) - drop_last]
    for path in files:
        shutil.copy(path, folder / path.name)
    newest = int(files[-1].name[:4]) if files else 0
    for offset, text in enumerate(extra, start=newest + 1):
        (folder / f"{offset:04d}_extra_{offset}.sql").write_text(text)
    return folder


async def current_version(conn: asyncpg.Connection, queries: Queries) -> int:
    return (await schema_status(conn, queries)).version


async def test_five_concurrent_migrations_leave_one_correct_schema(db_url: str) -> None:
    queries = Queries.load("fresh_schema")
    conns = [await asyncpg.connect(db_url) for _ in range(5)]
    try:
        applied = await asyncio.gather(*(migrate(c, queries) for c in conns))
        versions = [m.version for m in discover()]
        assert sorted(v for run in applied for v in run) == versions
        assert await current_version(conns[0], queries) == latest_version()
        rows = await conns[0].fetch('SELECT version FROM "fresh_schema".schema_version')
        assert sorted(r["version"] for r in rows) == versions
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


async def test_an_edited_applied_migration_is_refused(db_url: str, tmp_path: Path) -> None:
    folder = migrations_dir(tmp_path)
    queries = Queries.load("edited_schema")
    conn = await asyncpg.connect(db_url)
    try:
        assert await migrate(conn, queries, discover(folder)) != []
        edited = sorted(folder.glob("0002_*.sql"))[0]
        edited.write_text(edited.read_text() + "\nCREATE TABLE /*schema*/sneaky (x int);\n")
        for attempt in (migrate(conn, queries, discover(folder)),
                        ensure_schema(conn, queries, auto_migrate=True,
                                      migrations=discover(folder))):
            with pytest.raises(SchemaError, match=r"0002_workers differs from the one applied"):
                await attempt
        status = await schema_status(conn, queries, discover(folder))
        assert (status.state, status.runnable) == ("edited", False)
        assert await conn.fetchval("SELECT to_regclass('edited_schema.sneaky')") is None
    finally:
        await conn.close()


async def test_a_version_table_without_checksums_is_filled_in(db_url: str) -> None:
    """A database migrated before checksums were recorded: the migrator adds the columns,
    records the files' checksums, and from then on refuses edits."""
    queries = Queries.load("before_checksums")
    conn = await asyncpg.connect(db_url)
    try:
        await migrate(conn, queries)
        await conn.execute("ALTER TABLE before_checksums.schema_version "
                           "DROP COLUMN checksum, DROP COLUMN compatibility")
        assert (await schema_status(conn, queries)).state == "current"
        assert await migrate(conn, queries) == []
        rows = await conn.fetch("SELECT version, checksum, compatibility "
                                "FROM before_checksums.schema_version ORDER BY version")
        files = discover()
        assert [(r["version"], r["checksum"], r["compatibility"]) for r in rows] == [
            (m.version, m.checksum, m.compatibility) for m in files]
    finally:
        await conn.close()


ADDITIVE = "-- compatible: previous\nCREATE TABLE /*schema*/probe (id int);\n"
ADDITIVE_TOO = "-- compatible: previous\nALTER TABLE /*schema*/probe ADD COLUMN note text;\n"
BREAKING = "-- breaking\nALTER TABLE /*schema*/workers RENAME COLUMN host TO hostname;\n"


async def test_old_code_runs_on_a_newer_schema_only_across_compatible_migrations(
    db_url: str, tmp_path: Path,
) -> None:
    old = discover(migrations_dir(tmp_path))
    conn = await asyncpg.connect(db_url)
    try:
        queries = Queries.load("compatible_schema")
        await migrate(conn, queries, discover(migrations_dir(tmp_path, ADDITIVE, ADDITIVE_TOO)))
        assert await ensure_schema(conn, queries, auto_migrate=False,
                                   migrations=old) == old[-1].version + 2
        assert await migrate(conn, queries, old) == []  # a rolled-back release step
        assert (await schema_status(conn, queries, old)).state == "compatible"

        queries = Queries.load("breaking_schema")
        await migrate(conn, queries, discover(migrations_dir(tmp_path, ADDITIVE, BREAKING)))
        for attempt in (ensure_schema(conn, queries, auto_migrate=True, migrations=old),
                        migrate(conn, queries, old)):
            with pytest.raises(SchemaError, match=rf"extra_{old[-1].version + 2} is breaking"):
                await attempt
        assert (await schema_status(conn, queries, old)).state == "incompatible"
    finally:
        await conn.close()


@pytest.mark.parametrize("newest", [ADDITIVE, ADDITIVE.replace("compatible: previous",
                                                                 "breaking")],
                         ids=["compatible", "breaking"])
async def test_new_code_on_an_older_schema_refuses_unless_it_may_migrate(
    db_url: str, tmp_path: Path, newest: str,
) -> None:
    """Whatever the missing migration is, new code needs it: in production (no automatic
    migration) it refuses until the release step has run."""
    new = discover(migrations_dir(tmp_path, newest))
    queries = Queries.load("older_schema")
    conn = await asyncpg.connect(db_url)
    try:
        await migrate(conn, queries)
        with pytest.raises(SchemaError, match="run `python -m shared.migrate`"):
            await ensure_schema(conn, queries, auto_migrate=False, migrations=new)
        assert (await schema_status(conn, queries, new)).state == "behind"
        assert await ensure_schema(conn, queries, auto_migrate=True,
                                   migrations=new) == new[-1].version
        assert await conn.fetchval("SELECT to_regclass('older_schema.probe')") is not None
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


async def test_the_job_columns_fragment_is_every_column_of_jobs_and_history(
        db_url: str) -> None:
    """The statements that move jobs between the tables list /*job_columns*/: a column
    added to the tables and not to the fragment would be dropped on the way."""
    fragment = re.search(r"^-- fragment: job_columns\n(?:--[^\n]*\n)*((?:[^\n]+\n)+)",
                         (SQL_DIR / "queries" / "finish.sql").read_text(), re.M)
    assert fragment is not None
    listed = [c.strip() for c in fragment.group(1).split(",")]
    conn = await asyncpg.connect(db_url)
    try:
        for table in ("jobs", "history"):
            columns = await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'ms8jobs' AND table_name = $1", table)
            assert sorted(listed) == sorted(r["column_name"] for r in columns), table
    finally:
        await conn.close()


def test_every_named_query_is_used_by_the_code() -> None:
    code = "\n".join(
        path.read_text()
        for folder in ("shared", "api", "worker", "scheduler", "analytics")
        if (ROOT / folder).exists()
        for path in (ROOT / folder).rglob("*.py")
    )
    unused = [name for name in _raw_queries() if not re.search(
        rf"\bqueries\.{name}\b|queries\[\"{name}\"\]", code)]
    assert unused == [], f"queries defined in sql/queries but used nowhere: {unused}"


async def test_both_job_tables_are_vacuumed_after_a_little_churn(db_url: str) -> None:
    """Jobs churn and history is pruned all day: each is vacuumed after a small share of
    dead tuples, without a cost delay, rather than after PostgreSQL's default fifth."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, c.reloptions FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'ms8jobs' AND c.relname IN ('jobs', 'history')")
    finally:
        await conn.close()
    options = {row["relname"]: dict(o.split("=", 1) for o in row["reloptions"] or [])
               for row in rows}
    assert set(options) == {"jobs", "history"}
    for table, set_options in options.items():
        assert float(set_options["autovacuum_vacuum_scale_factor"]) <= 0.02, table
        assert float(set_options["autovacuum_vacuum_cost_delay"]) == 0, table
    assert options["history"]["autovacuum_vacuum_threshold"] == "1000"
    # Truncating the hot table would lock out every fetch and send for its duration.
    assert options["jobs"]["vacuum_truncate"] == "false"
