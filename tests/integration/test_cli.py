"""``ms8-jobs`` against a real database: the commands print JSON, errors one line."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from shared import cli
from shared import queue as core
from shared.db import Database
from tests.conftest import SCHEMA


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MS8_SCHEMA", SCHEMA)


async def run(*argv: str) -> None:
    # In a thread: the command runs its own event loop (asyncio.run).
    await asyncio.to_thread(cli.main, list(argv))


async def test_queue_cancel_waiting_cancels_waiting_jobs_and_prints_the_count(
    db: Database, cli_env: None, capsys: pytest.CaptureFixture[str],
) -> None:
    await core.send_many(db, [core.JobSpec.of("maint") for _ in range(4)])
    [active] = await core.fetch(db, {"maint": 1}, "w1")
    await run("queue", "cancel-waiting", "maint")
    assert orjson.loads(capsys.readouterr().out) == {"cancelled": 3}
    assert (await core.get_job(db, active.id)).state == "active"
    assert (await core.count_jobs(db))["maint"] == {"active": 1, "cancelled": 3}


async def test_an_unknown_queue_is_one_line_and_status_2(
    cli_env: None, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        await run("queue", "cancel-waiting", "nosuch")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "ms8-jobs: queue 'nosuch' does not exist\n"
