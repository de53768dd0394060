"""The PostgreSQL server the benchmark runs on, and a fresh database per scenario.

Every scenario of every system gets a database of its own, created empty and dropped
afterwards, so that no measurement sees another's tables, notifications or statistics
(the idle-cost scenario counts statements per database). The server is
``BENCH_DATABASE_URL`` when set, otherwise an embedded cluster under ``.data/bench-pg``
started with ``pg_stat_statements`` preloaded; its other settings are PostgreSQL's
defaults (fsync and synchronous commit on), as a production server would have them.

A server at ``BENCH_DATABASE_URL`` may be shared: the run then changes nothing outside
the databases it created (named ``bench_<label>_<random>``, each dropped when its
measurement ends, and any left by a failure dropped when the run closes). It installs no
extension in ``postgres`` there, resets no server-wide statistics, and ends no session
but those of its own databases (``DROP DATABASE ... WITH (FORCE)``). ``owned`` says which
kind of server it is: the CPU of a shared server's processes is not the run's
(``bench.cpu``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data" / "bench-pg"
SERVER_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "max_connections": "300",
    # Room for the statements of every database a run creates, so none is evicted mid-count.
    "pg_stat_statements.max": "20000",
}


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@dataclass
class Server:
    """A reachable server: its admin URL and what it offers."""

    url: str
    version: str
    has_stat_statements: bool
    owned: bool  # the run's own embedded server (else BENCH_DATABASE_URL, maybe shared)
    created: set[str] = field(default_factory=set)  # databases made and not dropped yet

    @classmethod
    async def start(cls) -> Server:
        url = os.environ.get("BENCH_DATABASE_URL")
        owned = not url
        if not url:
            from devstack.embedded import EmbeddedPostgres

            data_dir = Path(os.environ.get("BENCH_DATA_DIR", DATA_DIR))
            embedded = EmbeddedPostgres(data_dir, settings=SERVER_SETTINGS)
            url = await asyncio.to_thread(embedded.start)
            if not await _has_settings(url):  # adopted from a run with other settings
                url = await asyncio.to_thread(embedded.restart)
        admin = await asyncpg.connect(with_database(url, "postgres"))
        try:
            version = await admin.fetchval("SHOW server_version")
            preloaded = await admin.fetchval("SHOW shared_preload_libraries")
            has_statements = "pg_stat_statements" in preloaded
            if has_statements and owned:
                await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            elif has_statements:  # a shared server: use the extension only if it is there
                has_statements = bool(await admin.fetchval(
                    "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"))
        finally:
            await admin.close()
        return cls(url=with_database(url, "postgres"), version=version,
                   has_stat_statements=has_statements, owned=owned)

    @property
    def where(self) -> str:
        """Which server this is, for the report (no password)."""
        if self.owned:
            return "embedded, started by the benchmark"
        parts = urlsplit(self.url)
        return f"BENCH_DATABASE_URL ({parts.hostname or 'local socket'}:{parts.port or 5432})"

    async def admin(self) -> asyncpg.Connection:
        """A connection to the ``postgres`` database: it never counts against a bench db."""
        return await asyncpg.connect(self.url)

    async def create_database(self, label: str) -> str:
        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        conn = await self.admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.add(name)
        return with_database(self.url, name)

    async def drop_database(self, url: str) -> None:
        """Drop a database this run created (ending its sessions); never another."""
        name = database_of(url)
        if name not in self.created:
            raise ValueError(f"{name!r} was not created by this run: not dropped")
        conn = await self.admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self.created.discard(name)

    async def close(self) -> None:
        """Drop what a failure left of the run's databases (each is dropped after its
        measurement otherwise)."""
        for name in sorted(self.created):
            await self.drop_database(with_database(self.url, name))

    @asynccontextmanager
    async def database(self, label: str) -> AsyncIterator[str]:
        """A fresh empty database for one measurement, dropped afterwards."""
        url = await self.create_database(label)
        try:
            yield url
        finally:
            await self.drop_database(url)


async def _has_settings(url: str) -> bool:
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        for name, value in SERVER_SETTINGS.items():
            if await conn.fetchval("SELECT current_setting($1, true)", name) != value:
                return False
        return True
    finally:
        await conn.close()
