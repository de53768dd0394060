"""Forward-only migrations: ``sql/migrations/NNNN_name.sql``, applied in order.

Each migration runs in its own transaction, which first records its version in
``schema_version`` (so a concurrent migrator clashes there rather than half-applying),
and all of it happens under an advisory lock per schema on a direct connection. Running
the migrator five times at once leaves one correct schema.

A process that finds the schema older than its code migrates when ``MS8_AUTO_MIGRATE`` is
on (the default) and otherwise refuses to start with a message saying what to run; a
schema newer than the code always refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.logging import get_logger
from shared.sql import SQL_DIR, Queries, render

log = get_logger(__name__)
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaError(RuntimeError):
    """The database schema does not match this code."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def sql(self, schema: str) -> str:
        return render(self.path.read_text(), schema)


def discover(directory: Path = SQL_DIR / "migrations") -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise SchemaError(f"migration file {path.name!r} is not named NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise SchemaError(f"migration numbers must run 1, 2, 3... without gaps: {versions}")
    return migrations


def latest_version() -> int:
    return len(discover())


async def current_version(conn: asyncpg.Connection, queries: Queries) -> int:
    """The schema's applied version; 0 when nothing was ever applied."""
    table = f'"{queries.schema}".schema_version'
    if not await conn.fetchval(queries.version_table_exists, table):
        return 0
    return await conn.fetchval(queries.current_version) or 0


async def migrate(conn: asyncpg.Connection, queries: Queries) -> list[int]:
    """Apply the missing migrations on a direct connection; returns the versions applied."""
    schema = queries.schema
    applied_now: list[int] = []
    await conn.execute(queries.migrate_lock, schema)
    try:
        await conn.execute(queries.create_version_table)
        done = {r["version"] for r in await conn.fetch(queries.applied_versions)}
        newest_known = latest_version()
        if done and max(done) > newest_known:
            raise SchemaError(
                f"schema {schema!r} is at version {max(done)}, newer than this code "
                f"(which knows up to {newest_known}): deploy the newer code"
            )
        for migration in discover():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(queries.record_version, migration.version, migration.name)
                await conn.execute(migration.sql(schema))
            applied_now.append(migration.version)
            log.info("migration applied", schema=schema, version=migration.version,
                     name=migration.name)
    finally:
        await conn.execute(queries.migrate_unlock, schema)
    return applied_now


async def ensure_schema(conn: asyncpg.Connection, queries: Queries, *, auto_migrate: bool) -> int:
    """Make sure the schema is current before a process starts; returns its version."""
    version = await current_version(conn, queries)
    latest = latest_version()
    if version == latest:
        return version
    if version > latest:
        raise SchemaError(
            f"schema {queries.schema!r} is at version {version}, newer than this code "
            f"(which knows up to {latest}): deploy the newer code"
        )
    if not auto_migrate:
        raise SchemaError(
            f"schema {queries.schema!r} is at version {version} but this code needs "
            f"{latest}: run `python -m shared.migrate` (or set MS8_AUTO_MIGRATE=true)"
        )
    await migrate(conn, queries)
    return latest


async def run_migrations() -> None:
    """Apply missing migrations to the configured database (the Procfile release step)."""
    from shared.db import connect_args, resolve_urls, retry_connection
    from shared.logging import configure_logging
    from shared.settings import Settings

    settings = Settings.from_env()
    configure_logging("migrate", settings.log_level, settings.log_format)
    _, direct = resolve_urls(settings)
    conn = await retry_connection(lambda: asyncpg.connect(**connect_args(settings, direct)),
                                  what="migrate", attempts=10)
    try:
        applied = await migrate(conn, Queries.load(settings.schema))
        log.info("schema is current", schema=settings.schema, version=latest_version(),
                 applied=applied)
    finally:
        await conn.close()


if __name__ == "__main__":
    import asyncio

    asyncio.run(run_migrations())
