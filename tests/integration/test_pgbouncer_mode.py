"""MS8_PGBOUNCER in use, not only read: behind PgBouncer in transaction mode a prepared
statement made on one server connection is gone on the next, so no connection of the
process may keep named prepared statements. PostgreSQL lists the named ones a session
holds in ``pg_prepared_statements``; asyncpg's unnamed statements are not kept there."""

from __future__ import annotations

import pytest

from shared import queue
from shared.db import open_database
from tests.conftest import test_settings as settings_for

HELD = "SELECT name FROM pg_prepared_statements"


@pytest.mark.parametrize("pgbouncer, kept", [("true", False), ("false", True)])
async def test_pgbouncer_mode_prepares_nothing_that_outlives_a_statement(
        db_url: str, pgbouncer: str, kept: bool) -> None:
    db = await open_database(settings_for(db_url, MS8_PGBOUNCER=pgbouncer, MS8_POOL_MIN="1",
                                           MS8_POOL_MAX="1"), "test")
    try:
        sent = await queue.send(db, "q", {"n": 1})
        await queue.get_job(db, sent.id)
        await queue.count_jobs(db)
        async with db.pool.acquire() as conn:  # the only connection: the one used above
            pooled = await conn.fetch(HELD)
        direct = await db.connect_direct()
        try:
            await direct.fetchval(db.queries.ping)
            await direct.fetchval(db.queries.ping)
            on_direct = await direct.fetch(HELD)
        finally:
            await direct.close()
    finally:
        await db.close()
    assert bool(pooled) is kept, pooled
    assert bool(on_direct) is kept, on_direct
