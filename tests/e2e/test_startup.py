"""Every entry point refuses the same way: one line naming what to fix, exit 2, nothing
started. Outside dev no ``DATABASE_URL`` means no start at all (never the embedded
server); a bad URL, a refused login and a schema newer than the code are refusals too.
The operator's command (``ms8-jobs``, here ``python -m shared.cli stats``) is an entry
point like the processes."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import SCHEMA
from tests.e2e.processes import Processes

pytestmark = pytest.mark.slow

ENTRY_POINTS = {"api": "api", "worker": "worker", "scheduler": "scheduler",
                "shared.migrate": "migrate", "shared.cli": "ms8-jobs"}
ARGS = {"shared.cli": ("stats",)}  # a command that reads the database
PRODUCTION = {"MS8_ENV": "production",
              "MS8_API_KEYS": "ops:ops-secret-0123456789abcdef0123456789:read,write"}


def only_line(lines: list[str]) -> str:
    lines = [line for line in lines if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("module", ENTRY_POINTS)
async def test_outside_dev_without_database_url_nothing_starts(
    processes: Processes, module: str, tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    proc = processes.start(module, *ARGS.get(module, ()), DATABASE_URL="",
                           MS8_DATA_DIR=str(data), **PRODUCTION)
    assert await proc.wait_exit() == 2
    record = json.loads(only_line(proc.lines))
    assert (record["event"], record["process"]) == ("cannot start", ENTRY_POINTS[module])
    assert record["reason"].startswith("DATABASE_URL is not set")
    assert not data.exists()  # the embedded server was never started


@pytest.mark.parametrize("module", ENTRY_POINTS)
async def test_a_bad_url_is_prog_colon_reason_without_the_password(
    processes: Processes, module: str,
) -> None:
    proc = processes.start(module, *ARGS.get(module, ()),
                           DATABASE_URL="postgresql://app:hunter2@db:54x2/ms8",
                           MS8_LOG_FORMAT="console", **PRODUCTION)
    assert await proc.wait_exit() == 2
    line = only_line(proc.lines)
    assert line.startswith(f"{ENTRY_POINTS[module]}: DATABASE_URL: the port must be"), line
    assert "hunter2" not in line


@pytest.mark.parametrize("module", ENTRY_POINTS)
async def test_a_refused_login_is_a_refusal(
    processes: Processes, module: str, db_url: str,
) -> None:
    user_part, _, rest = db_url.partition("://")[2].partition("@")
    wrong = f"postgresql://{user_part.split(':')[0]}:wrong-password@{rest}"
    proc = processes.start(module, *ARGS.get(module, ()), DATABASE_URL=wrong,
                           **PRODUCTION)
    assert await proc.wait_exit() == 2
    refusals = proc.find("cannot start")
    assert len(refusals) == 1, proc.tail()
    assert refusals[0]["reason"].startswith(
        "the database refused the connection: password authentication failed"), refusals
    assert "wrong-password" not in "\n".join(proc.lines)


@pytest.mark.parametrize("module", ["api", "worker", "scheduler"])
async def test_a_schema_newer_than_the_code_is_a_refusal(
    processes: Processes, module: str, db_url: str,
) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(f"INSERT INTO {SCHEMA}.schema_version (version, name) "
                           "VALUES (999, 'from_the_future')")
    finally:
        await conn.close()
    proc = processes.start(module, **PRODUCTION)
    assert await proc.wait_exit() == 2
    refusals = proc.find("cannot start")
    assert len(refusals) == 1 and "newer than this code" in refusals[0]["reason"], proc.tail()
    assert not any("Traceback" in line for line in proc.lines), proc.tail()
