"""Through a real PgBouncer in transaction mode (started by the test in front of the test
PostgreSQL): without ``MS8_PGBOUNCER`` every process refuses to start, naming the fix;
with it but no direct URL, LISTEN and session locks are refused (the worker may poll
instead); with both, the stack sends, runs and reports jobs through the pooler.
TLS settings of the URL are checked against PgBouncer's client TLS (the embedded server
is built without TLS)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg
import httpx
import pytest

from shared import pooler
from shared.db import connect_args
from shared.settings import Settings
from shared.sql import Queries
from tests.conftest import SCHEMA
from tests.e2e.processes import Process, Processes
from tests.pooler import PgBouncer, pgbouncer_binary
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    for path in (cert, key):
        path.chmod(0o644)  # read by the user PgBouncer runs as
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("certs")
    directory.chmod(0o755)
    return {name: make_cert(directory, name) for name in ("server", "other")}


@pytest.fixture(scope="module")
def bouncer(server_url: str, certificates: dict[str, tuple[Path, Path]]
            ) -> Iterator[PgBouncer]:
    pgbouncer_binary()
    with PgBouncer(server_url, tls=certificates["server"]) as running:
        yield running


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@pytest.fixture
def pooled_url(bouncer: PgBouncer, db_url: str) -> str:
    """This test's database, through PgBouncer."""
    return bouncer.url(database_of(db_url))


async def test_the_probe_tells_a_transaction_pooler_from_a_session(
    server_url: str, bouncer: PgBouncer, db_url: str,
) -> None:
    queries = Queries.load(SCHEMA)
    settings = Settings.from_env({})

    def through(url: str, cache: int = 0):  # type: ignore[no-untyped-def]
        return lambda: asyncpg.connect(**connect_args(settings, url),
                                       statement_cache_size=cache)

    name = database_of(db_url)
    assert await pooler.shares_sessions(through(bouncer.url(name)), queries)
    assert await pooler.shares_sessions(through(bouncer.url(name), 100), queries)
    assert not await pooler.shares_sessions(through(db_url), queries)
    with PgBouncer(server_url, pool_mode="session") as session_mode:
        assert not await pooler.shares_sessions(through(session_mode.url(name)), queries)


def refusal(proc: Process) -> str:
    found = proc.find("cannot start")
    assert len(found) == 1, proc.tail()
    return str(found[0]["reason"])


@pytest.mark.parametrize("module", ["api", "worker", "scheduler", "shared.migrate"])
async def test_without_the_setting_each_process_refuses_naming_it(
    processes: Processes, pooled_url: str, module: str,
) -> None:
    proc = processes.start(module, DATABASE_URL=pooled_url)
    assert await proc.wait_exit() == 2
    reason = refusal(proc)
    assert "leads to a pooler in transaction mode" in reason
    assert "set MS8_PGBOUNCER=true" in reason and "DATABASE_DIRECT_URL" in reason
    assert not any("Traceback" in line for line in proc.lines)


@pytest.mark.parametrize("command", [["stats"], ["send", "echo", "{}"]])
async def test_the_operators_command_refuses_too_and_works_with_the_setting(
    processes: Processes, pooled_url: str, command: list[str],
) -> None:
    """``ms8-jobs`` (``python -m shared.cli``) needs no session of its own: the setting
    alone is enough."""
    proc = processes.start("shared.cli", *command, DATABASE_URL=pooled_url)
    assert await proc.wait_exit() == 2
    assert "set MS8_PGBOUNCER=true" in refusal(proc)
    assert not any("Traceback" in line for line in proc.lines)
    proc = processes.start("shared.cli", *command, DATABASE_URL=pooled_url,
                           MS8_PGBOUNCER="true")
    assert await proc.wait_exit() == 0, proc.tail()


@pytest.mark.parametrize("module", ["api", "worker", "scheduler", "shared.migrate"])
async def test_the_setting_without_a_direct_url_refuses_listen_through_the_pooler(
    processes: Processes, pooled_url: str, module: str,
) -> None:
    proc = processes.start(module, DATABASE_URL=pooled_url, MS8_PGBOUNCER="true")
    assert await proc.wait_exit() == 2
    reason = refusal(proc)
    assert reason.startswith("DATABASE_DIRECT_URL is not set and DATABASE_URL leads to a "
                             "pooler"), reason
    assert ("--poll-only" in reason) == (module == "worker")


async def test_a_direct_url_that_is_the_pooler_too_is_refused(
    processes: Processes, pooled_url: str,
) -> None:
    proc = processes.start("worker", DATABASE_URL=pooled_url, DATABASE_DIRECT_URL=pooled_url,
                           MS8_PGBOUNCER="true")
    assert await proc.wait_exit() == 2
    assert refusal(proc).startswith("DATABASE_DIRECT_URL leads to a pooler")


async def test_a_poll_only_worker_needs_no_direct_url(
    processes: Processes, pooled_url: str, db_url: str,
) -> None:
    from shared import queue
    from shared.db import open_database
    from tests.conftest import test_settings

    worker = processes.start("worker", "--poll-only", "--poll", "0.2", "--queues", "echo",
                             DATABASE_URL=pooled_url, MS8_PGBOUNCER="true",
                             MS8_AUTO_MIGRATE="false")
    await worker.wait_for_log("worker started")
    db = await open_database(test_settings(db_url), "test")
    try:
        sent = [await queue.send(db, "echo", {"n": n}) for n in range(20)]
        for s in sent:
            await wait_until(lambda s=s: queue.get_job(db, s.id), timeout=5)
            await wait_until(lambda s=s: _finished(db, s.id), timeout=30)
        jobs = [await queue.get_job(db, s.id) for s in sent]
        assert {(j.state, j.attempt) for j in jobs} == {("completed", 1)}
    finally:
        await db.close()
    assert await worker.stop() == 0


async def _finished(db, job_id: int) -> bool:  # type: ignore[no-untyped-def]
    from shared import queue

    return (await queue.get_job(db, job_id)).finished


async def test_with_both_settings_the_stack_works_through_the_pooler(
    processes: Processes, pooled_url: str, db_url: str,
) -> None:
    env = {"DATABASE_URL": pooled_url, "DATABASE_DIRECT_URL": db_url, "MS8_PGBOUNCER": "true"}
    port = free_port()
    api = processes.start("api", PORT=str(port), MS8_API_HOST="127.0.0.1", **env)
    workers = [processes.start("worker", "--queues", "echo=20", name=f"worker{i}", **env)
               for i in range(2)]
    await api.wait_for_log("api ready")
    for worker in workers:
        await worker.wait_for_log("worker started")
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        bulk = await client.post("/jobs/bulk", json={"jobs": [
            {"queue": "echo", "data": {"n": n}} for n in range(200)]})
        assert bulk.status_code in (200, 201), bulk.text
        single = [(await client.post("/jobs", json={"queue": "echo", "data": {"one": n}}))
                  for n in range(20)]
        assert {r.status_code for r in single} == {201}
        ids = [job["id"] for job in bulk.json()["jobs"]] + [r.json()["id"] for r in single]

        async def all_done() -> bool:
            states = [(await client.get(f"/jobs/{i}")).json()["state"] for i in ids[-5:]]
            return all(s == "completed" for s in states)

        await wait_until(all_done, timeout=60, message="the jobs done")
        jobs = [(await client.get(f"/jobs/{i}")).json() for i in ids]
        assert {(j["state"], j["attempt"]) for j in jobs} == {("completed", 1)}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert "ms8_api_database_up 1.0" in (await client.get("/metrics")).text
    for proc in (api, *workers):
        assert await proc.stop() == 0
        assert not proc.find("crashed") and not any("Traceback" in x for x in proc.lines)


async def test_tls_modes_of_the_url_reach_the_pooler_as_asked(
    bouncer: PgBouncer, db_url: str, certificates: dict[str, tuple[Path, Path]],
) -> None:
    name = database_of(db_url)
    settings = Settings.from_env({})
    user = urlsplit(db_url)
    auth = f"{user.username}:{user.password}"

    async def tls_of(url: str) -> bool:
        conn = await asyncpg.connect(**connect_args(settings, url), statement_cache_size=0)
        try:
            return conn._transport.get_extra_info("sslcontext") is not None
        finally:
            await conn.close()

    base = f"postgresql://{auth}@localhost:{bouncer.port}/{name}"
    assert await tls_of(f"{base}?sslmode=require")
    assert not await tls_of(f"{base}?sslmode=disable")
    root = quote(str(certificates["server"][0]), safe="")
    assert await tls_of(f"{base}?sslmode=verify-full&sslrootcert={root}")
    other = quote(str(certificates["other"][0]), safe="")
    with pytest.raises(Exception, match="certificate verify failed"):
        await tls_of(f"{base}?sslmode=verify-full&sslrootcert={other}")
