"""Rolling upgrades as real processes, with the production defaults.

"Old code" is the project with a migrations directory that lacks the newest file
(``MS8_SQL_DIR`` pointing at such a copy); "new code" knows every file. In production
only the release step (``python -m shared.migrate``) migrates, so:

- new code on the old schema refuses to start until the release step has run;
- across a ``compatible: previous`` migration, old processes stay ready, restart and run
  jobs; across a ``breaking`` one, they turn unready and refuse to restart.

The compatible case uses the project's newest migration, which is additive; the breaking
case adds a (nominally) breaking one of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from shared.sql import SQL_DIR
from tests.e2e.processes import Process, Processes
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow

SECRET = "upgrade-secret-0123456789abcdefghijk"
HEADERS = {"Authorization": f"Bearer {SECRET}"}
PRODUCTION = {"MS8_ENV": "production", "MS8_API_KEYS": f"ops:{SECRET}:read,write",
              "MS8_POOL_MAX": "4", "MS8_WORKER_GRACE_SECONDS": "5"}
# What makes a migration breaking is its pragma; the statement only has to be one the
# new code (the project's own queries) survives.
BREAKING = "-- breaking\nCREATE TABLE /*schema*/breaking_probe (id int);\n"


def sql_copy(tmp_path: Path, name: str, *, drop_newest: bool = False,
             add: str | None = None) -> Path:
    folder = tmp_path / name
    shutil.copytree(SQL_DIR, folder)
    migrations = sorted((folder / "migrations").glob("*.sql"))
    if drop_newest:
        migrations.pop().unlink()
    if add is not None:
        number = int(migrations[-1].name[:4]) + 1
        (folder / "migrations" / f"{number:04d}_breaking.sql").write_text(add)
    return folder


class Code:
    """One version of the code: the processes it starts share its SQL directory."""

    def __init__(self, processes: Processes, schema: str, sql_dir: Path | None, name: str
                 ) -> None:
        self.processes = processes
        self.name = name
        self.env = {**PRODUCTION, "MS8_SCHEMA": schema}
        if sql_dir is not None:
            self.env["MS8_SQL_DIR"] = str(sql_dir)

    async def release(self) -> None:
        step = self.processes.start("shared.migrate", name=f"{self.name}-release", **self.env)
        assert await step.wait_exit(60) == 0, step.tail()

    def worker(self, label: str) -> Process:
        return self.processes.start("worker", "--queues", "echo=2", "--id",
                                    f"{self.name}-{label}", name=f"{self.name}-{label}",
                                    **self.env)

    async def api(self, label: str) -> tuple[Process, str]:
        port = free_port()
        proc = self.processes.start("api", name=f"{self.name}-{label}", PORT=str(port),
                                    MS8_API_HOST="127.0.0.1", **self.env)
        await proc.wait_for_log("api ready", timeout=60)
        return proc, f"http://127.0.0.1:{port}"


async def ready(url: str) -> tuple[int, str]:
    async with httpx.AsyncClient(headers=HEADERS, timeout=10) as client:
        response = await client.get(f"{url}/health/ready")
    return response.status_code, response.json()["schema"]


async def run_echo(url: str) -> dict:
    async with httpx.AsyncClient(headers=HEADERS, timeout=10) as client:
        job = (await client.post(f"{url}/jobs", json={
            "queue": "echo", "data": {"hello": "upgrade"}})).json()

        async def finished() -> dict | None:
            body = (await client.get(f"{url}/jobs/{job['id']}")).json()
            return body if body["state"] == "completed" else None

        return await wait_until(finished, timeout=30, message=f"job {job['id']} completed")


async def test_old_processes_live_through_a_compatible_migration(
    processes: Processes, tmp_path: Path,
) -> None:
    old = Code(processes, "upgrade_ok", sql_copy(tmp_path, "old", drop_newest=True), "old")
    new = Code(processes, "upgrade_ok", None, "new")
    await old.release()
    old_api, old_url = await old.api("api")
    old_worker = old.worker("worker")
    await old_worker.wait_for_log("worker started")
    assert await ready(old_url) == (200, "current")

    refused = new.worker("early")  # before the release step: production does not migrate
    assert await refused.wait_exit(30) == 2
    assert "run `python -m shared.migrate`" in refused.tail()

    await new.release()
    assert await ready(old_url) == (200, "compatible")
    assert (await run_echo(old_url))["worker_id"] == "old-worker"

    assert await old_api.stop() == 0
    assert await old_worker.stop() == 0
    _, old_url = await old.api("api-again")
    assert await ready(old_url) == (200, "compatible")
    again = old.worker("worker-again")
    await again.wait_for_log("worker started")
    assert (await run_echo(old_url))["worker_id"] == "old-worker-again"
    assert await again.stop() == 0

    new_worker = new.worker("worker")
    await new_worker.wait_for_log("worker started")
    assert (await run_echo(old_url))["worker_id"] == "new-worker"


async def test_old_processes_refuse_a_breaking_migration(
    processes: Processes, tmp_path: Path,
) -> None:
    old = Code(processes, "upgrade_break", None, "old")
    new = Code(processes, "upgrade_break", sql_copy(tmp_path, "new", add=BREAKING), "new")
    await old.release()
    old_api, old_url = await old.api("api")
    assert await ready(old_url) == (200, "current")

    await new.release()
    assert await ready(old_url) == (503, "incompatible")
    restarted = old.worker("worker")
    assert await restarted.wait_exit(30) == 2
    assert "cannot run on it" in restarted.tail()
    assert await old_api.stop() == 0
    api_again = processes.start("api", name="old-api-again", PORT=str(free_port()),
                                MS8_API_HOST="127.0.0.1", **old.env)
    assert await api_again.wait_exit(60) == 2
    assert "cannot run on it" in api_again.tail()

    new_worker = new.worker("worker")
    await new_worker.wait_for_log("worker started")
    _, new_url = await new.api("api")
    assert await ready(new_url) == (200, "current")
    assert (await run_echo(new_url))["worker_id"] == "new-worker"
