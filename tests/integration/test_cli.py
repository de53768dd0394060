"""``ms8-jobs`` against a real database: the commands print JSON, errors one line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from shared import cli
from shared import queue as core
from shared.db import Database
from tests.conftest import SCHEMA


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command's environment; the logging it sets up (on the captured output) is
    undone afterwards, so later tests do not log to a closed file."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MS8_SCHEMA", SCHEMA)
    root = logging.getLogger()
    saved = structlog.get_config(), root.handlers[:], root.level
    yield
    structlog.configure(**saved[0])
    structlog.contextvars.clear_contextvars()
    root.handlers[:], root.level = saved[1], saved[2]


async def run(*argv: str) -> int:
    """The command's exit status. In a thread: it runs its own event loop."""
    with pytest.raises(SystemExit) as exit_:
        await asyncio.to_thread(cli.main, list(argv))
    return int(exit_.value.code or 0)


async def test_queue_cancel_waiting_cancels_waiting_jobs_and_prints_the_count(
    db: Database, cli_env: None, capsys: pytest.CaptureFixture[str],
) -> None:
    await core.send_many(db, [core.JobSpec.of("maint") for _ in range(4)])
    [active] = await core.fetch(db, {"maint": 1}, "w1")
    assert await run("queue", "cancel-waiting", "maint") == 0
    assert orjson.loads(capsys.readouterr().out) == {"cancelled": 3}
    assert (await core.get_job(db, active.id)).state == "active"
    assert (await core.count_jobs(db))["maint"] == {"active": 1, "cancelled": 3}


async def test_an_unknown_queue_is_one_line_and_status_2(
    cli_env: None, capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run("queue", "cancel-waiting", "nosuch") == 2
    assert capsys.readouterr().err.endswith("queue 'nosuch' does not exist\n")
