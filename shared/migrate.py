"""Forward-only migrations: ``sql/migrations/NNNN_name.sql``, applied in order.

Each migration runs in its own transaction, which first records its version, checksum and
compatibility in ``schema_version`` (so a concurrent migrator clashes there rather than
half-applying), and all of it happens under an advisory lock per schema on a direct
connection. Running the migrator five times at once leaves one correct schema. An applied
migration whose file has changed since is refused (see ``shared.migrations``).

At start, a process whose code is older than the schema runs if every migration it does
not know is ``compatible: previous``, and refuses otherwise. One whose code is newer
migrates when ``MS8_AUTO_MIGRATE`` is on (the default in dev, off in production, where
only the release step migrates) and otherwise refuses with a message saying what to run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

import asyncpg

from shared.conn import Conn
from shared.logging import get_logger
from shared.migrations import (
    BEHIND,
    COMPATIBLE_NEWER,
    EMPTY,
    Migration,
    SchemaError,
    compare,
    known_migrations,
    read_applied,
    schema_status,
)
from shared.sql import Queries

log = get_logger(__name__)

__all__ = ["SchemaError", "ensure_schema", "migrate", "run_migrations"]


async def migrate(
    conn: Conn, queries: Queries, migrations: Sequence[Migration] | None = None,
) -> list[int]:
    """Apply the missing migrations on a direct connection; returns the versions applied.

    On a schema newer than this code whose newer migrations are all compatible there is
    nothing to do (the release step of a rolled-back deploy); a breaking one refuses.
    """
    schema = queries.schema
    known = list(known_migrations() if migrations is None else migrations)
    applied_now: list[int] = []
    await conn.execute(queries.migrate_lock, schema)
    try:
        await conn.execute(queries.create_version_table)
        applied = await read_applied(conn, queries)
        status = compare(applied, known, schema)
        if not status.runnable and status.state not in (BEHIND, EMPTY):
            raise SchemaError(status.detail)
        await _backfill(conn, queries, known, {a.version for a in applied
                                               if a.checksum is None})
        if status.state == COMPATIBLE_NEWER:
            log.info("schema is newer than this code and compatible with it: nothing to do",
                     schema=schema, version=status.version, code_version=status.expected)
        done = {a.version for a in applied}
        for migration in known:
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(queries.record_version, migration.version, migration.name,
                                   migration.checksum, migration.compatibility)
                await conn.execute(migration.sql(schema))
            applied_now.append(migration.version)
            log.info("migration applied", schema=schema, version=migration.version,
                     name=migration.name, compatibility=migration.compatibility)
    finally:
        await conn.execute(queries.migrate_unlock, schema)
    return applied_now


async def _backfill(
    conn: Conn, queries: Queries, known: Sequence[Migration], missing: set[int],
) -> None:
    """Record checksums of migrations applied before the version table had the column:
    the files as they are now are taken to be what was applied."""
    rows = [m for m in known if m.version in missing]
    if rows:
        await conn.execute(queries.backfill_versions, [m.version for m in rows],
                           [m.checksum for m in rows], [m.compatibility for m in rows])


async def ensure_schema(
    conn: Conn, queries: Queries, *, auto_migrate: bool,
    migrations: Sequence[Migration] | None = None,
) -> int:
    """Make sure this code can run on the schema before a process starts; returns the
    schema's version. Raises ``SchemaError`` saying why not, and what to do."""
    status = await schema_status(conn, queries, migrations)
    if status.runnable:
        if status.state == COMPATIBLE_NEWER:
            log.info("schema is newer than this code; its newer migrations are compatible",
                     schema=queries.schema, version=status.version,
                     code_version=status.expected)
        return status.version
    if status.state not in (BEHIND, EMPTY):
        raise SchemaError(status.detail)
    if not auto_migrate:
        raise SchemaError(
            f"{status.detail}: run `python -m shared.migrate` (the release step), or set "
            "MS8_AUTO_MIGRATE=true to let processes migrate at start")
    await migrate(conn, queries, migrations)
    return max(status.version, status.expected)


async def run_migrations() -> None:
    """Apply missing migrations to the configured database (the Procfile release step)."""
    from shared import pooler
    from shared.db import connect_args, resolve_urls, retry_connection
    from shared.logging import configure_logging
    from shared.settings import Settings

    settings = Settings.from_env()
    configure_logging("migrate", settings.log_level, settings.log_format)
    _, direct = resolve_urls(settings)
    queries = Queries.load(settings.schema)

    def connect() -> Awaitable[Conn]:
        return asyncpg.connect(**connect_args(settings, direct),
                               statement_cache_size=100 if settings.statement_cache else 0)

    conn = await retry_connection(connect, what="migrate", attempts=10, max_delay=10.0)
    try:
        # The migration lock is a session lock: never through a transaction-mode pooler.
        await pooler.check(settings, queries, pool=connect, direct=connect, same_url=True,
                           sessions=True)
        applied = await migrate(conn, queries)
        status = await schema_status(conn, queries)
        log.info("migrations done", schema=settings.schema, schema_status=status.state,
                 version=status.version, code_version=status.expected, applied=applied)
    finally:
        await conn.close()


def main() -> int:
    """``python -m shared.migrate``: the release step. Exit 0 migrated, 2 refused."""
    import asyncio

    from shared import startup

    return startup.run("migrate", lambda: asyncio.run(run_migrations()) or 0)


if __name__ == "__main__":
    import sys

    sys.exit(main())
