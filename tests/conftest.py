"""The test database: a real PostgreSQL, a migrated template, a fresh database per test.

With ``TEST_DATABASE_URL`` set, that server is used; otherwise an embedded server is
started under ``.data/test-pg`` (tuned for tests: no fsync). The schema is migrated once
into a template database; each test that asks for ``db`` gets its own database copied
from it, dropped afterwards, so tests never see each other's jobs or notifications.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from shared.db import Database, open_database
from shared.migrate import migrate
from shared.settings import Settings
from shared.sql import Queries

ROOT = Path(__file__).resolve().parent.parent
# One template per test session, so that two sessions on one server never collide
# (CREATE DATABASE ... TEMPLATE fails while anyone else is connected to the template).
TEMPLATE = f"ms8_test_template_{uuid.uuid4().hex[:8]}"
SCHEMA = "ms8jobs"
TEST_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "400",
}


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def server_url() -> str:
    """URL of the server the tests use (any database on it)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from devstack.embedded import EmbeddedPostgres

    data_dir = Path(os.environ.get("MS8_TEST_DATA_DIR", ROOT / ".data" / "test-pg"))
    return EmbeddedPostgres(data_dir, settings=TEST_SERVER_SETTINGS).start()


@pytest_asyncio.fixture(scope="session")
async def template_url(server_url: str) -> AsyncIterator[str]:
    """A database migrated once per session, the template of every test database."""
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    finally:
        await admin.close()
    url = with_database(server_url, TEMPLATE)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, Queries.load(SCHEMA))
    finally:
        await conn.close()
    yield url
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    finally:
        await admin.close()


async def create_test_database(server_url: str, template_url: str) -> str:
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(
            f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}" STRATEGY FILE_COPY')
    finally:
        await admin.close()
    return with_database(server_url, name)


async def drop_test_database(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def db_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    """URL of a fresh, migrated database of this test's own."""
    url = await create_test_database(server_url, template_url)
    yield url
    await drop_test_database(server_url, url)


def test_settings(url: str, **env: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": url, "MS8_SCHEMA": SCHEMA,
                              "MS8_POOL_MAX": "20", **env})


@pytest_asyncio.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(test_settings(db_url), "test")
    yield database
    await database.close()
