"""Real connections through each URL form: a Unix socket (``host=`` and percent-encoded),
IPv6, a percent-encoded password, keyword/value strings. (TLS is tested through
PgBouncer: the embedded server is built without it.)

A cluster of its own (listening on a socket and on ::1) so the shared test server keeps
its plain setup.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import asyncpg
import pytest

from devstack.embedded import EmbeddedPostgres
from shared.db import connect_args, open_database
from shared.settings import Settings
from tests.integration.test_embedded import execute

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    port: int
    socket_dir: pathlib.Path


PASSWORD = "p@ss:w/rd %#?&="  # every character a URL needs encoded
ENCODED = quote(PASSWORD, safe="")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    base = pathlib.Path(tempfile.mkdtemp(prefix="ms8-dburl-test-"))
    base.chmod(0o711)
    pg = EmbeddedPostgres(base / "pg", settings={"fsync": "off"})
    # The socket lives in the data directory: reachable by the server's user, short.
    pg.settings.update({"unix_socket_directories": str(pg.data_dir),
                        "listen_addresses": "127.0.0.1,::1"})
    try:
        admin = pg.start()
        with open(pg.data_dir / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write("local all all scram-sha-256\nhost all all ::1/128 scram-sha-256\n")
        execute(admin, f"CREATE ROLE odd LOGIN PASSWORD '{PASSWORD}'",
                "CREATE DATABASE ms8 OWNER odd", "SELECT pg_reload_conf()")
        port = int(admin.rsplit(":", 1)[1].split("/")[0])
        yield Server(port, pg.data_dir)
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


async def session_of(url: str) -> dict[str, object]:
    """Who and where the connection ended up, through the settings' own path."""
    settings = Settings.from_env({"DATABASE_URL": url})
    assert settings.database_url is not None
    conn = await asyncpg.connect(**connect_args(settings, settings.database_url))
    try:
        row = await conn.fetchrow(
            "SELECT current_user AS user, current_database() AS database,"
            " host(inet_server_addr()) AS address,"
            " (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl")
        return dict(row)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "template",
    [
        "postgresql://odd:{password}@/postgres?host={socket}&port={port}",
        "postgres://odd:{password}@{socket_encoded}:{port}/postgres",
        "host={socket} port={port} user=odd dbname=postgres password='{raw}'",
    ],
)
async def test_a_unix_socket_url_connects_over_the_socket(server: Server, template: str) -> None:
    url = template.format(password=ENCODED, raw=PASSWORD.replace("'", "\\'"),
                          socket=server.socket_dir, port=server.port,
                          socket_encoded=quote(str(server.socket_dir), safe=""))
    session = await session_of(url)
    assert session == {"user": "odd", "database": "postgres", "address": None, "ssl": False}


async def test_an_ipv6_host_with_an_encoded_password_connects(server: Server) -> None:
    session = await session_of(f"postgresql://odd:{ENCODED}@[::1]:{server.port}/postgres")
    assert (session["user"], session["address"]) == ("odd", "::1")


async def test_the_pool_and_direct_connections_take_a_socket_url(server: Server) -> None:
    url = f"postgresql://odd:{ENCODED}@/postgres?host={server.socket_dir}&port={server.port}"
    db = await open_database(Settings.from_env({"DATABASE_URL": url}), "test")
    try:
        assert await db.pool.fetchval("SELECT inet_server_addr() IS NULL")
        direct = await db.connect_direct()
        try:
            assert await direct.fetchval("SELECT current_user") == "odd"
        finally:
            await direct.close()
    finally:
        await db.close()


def test_the_release_step_migrates_through_the_socket_url_libpq_accepts(server: Server) -> None:
    url = f"postgresql://odd:{ENCODED}@/ms8?host={server.socket_dir}&port={server.port}"
    result = subprocess.run(
        [sys.executable, "-m", "shared.migrate"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "DATABASE_URL": url, "MS8_ENV": "production",
             "MS8_LOG_FORMAT": "json"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "migrations done" in [json.loads(line)["event"] for line in result.stderr.splitlines()
                                 if line.startswith("{")]
    assert ENCODED not in result.stderr and PASSWORD not in result.stderr
