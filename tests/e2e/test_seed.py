"""``ms8-jobs seed``: the command as an operator runs it, through its entry point."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import orjson
import pytest

from tests.conftest import SCHEMA
from tests.e2e.processes import ROOT

pytestmark = pytest.mark.slow


def ms8_jobs(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url, "MS8_SCHEMA": SCHEMA}
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_seed_fills_user_roles_once_with_a_progress_bar(db_url: str) -> None:
    first = await asyncio.to_thread(ms8_jobs, db_url, "seed", "--user-roles", "12000")
    assert first.returncode == 0, first.stderr
    assert orjson.loads(first.stdout) | {"seconds": 0} == {
        "inserted": 12000, "user_roles": 12000, "active": 12000, "seconds": 0}
    # Off a terminal, only the bar's final line is written.
    assert first.stderr.strip().splitlines()[-1].endswith("12,000/12,000 100%")
    again = await asyncio.to_thread(ms8_jobs, db_url, "seed", "--user-roles", "12000")
    assert orjson.loads(again.stdout)["inserted"] == 0
    bad = await asyncio.to_thread(ms8_jobs, db_url, "seed", "--user-roles", "-3")
    assert bad.returncode == 2 and "user_roles" in bad.stderr
