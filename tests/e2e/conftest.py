"""End-to-end fixtures: ``processes`` starts subprocesses against this test's database
and kills them all at teardown (showing their output when the test failed);
``own_cluster`` is a PostgreSQL server of the test's own, to stop, crash and restart."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from devstack.embedded import EmbeddedPostgres
from shared.migrate import migrate
from shared.sql import Queries
from tests.conftest import SCHEMA, TEST_SERVER_SETTINGS, with_database
from tests.e2e.processes import Processes


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def processes(db_url: str, request: pytest.FixtureRequest) -> Iterator[Processes]:
    group = Processes({"DATABASE_URL": db_url, "MS8_SCHEMA": SCHEMA})
    try:
        yield group
    finally:
        report = getattr(request.node, "report_call", None)
        group.close(show_output=report is not None and report.failed)


@contextmanager
def cluster_of_its_own(settings: dict[str, str] | None = None) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL cluster (not started) in a directory of its own, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="ms8-own-cluster-"))
    parent.chmod(0o711)  # as root the server runs as another user, who must traverse it
    server = EmbeddedPostgres(parent / "pg", settings=settings or TEST_SERVER_SETTINGS)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def own_cluster() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL cluster of this test's own, which it may stop, restart and kill."""
    with cluster_of_its_own() as server:
        yield server


async def start_migrated(cluster: EmbeddedPostgres) -> str:
    """Start ``cluster`` and migrate its ``postgres`` database; returns that URL."""
    import asyncio

    url = with_database(await asyncio.to_thread(cluster.start), "postgres")
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, Queries.load(SCHEMA))
    finally:
        await conn.close()
    return url
