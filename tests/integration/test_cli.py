"""``ms8-jobs`` against a real database, every sub-command (seed: tests/e2e/test_seed.py):
the commands print JSON, errors one line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import orjson
import pytest
import structlog

from shared import cli
from shared import queue as core
from shared.db import Database
from tests.conftest import SCHEMA


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """The logging a command sets up (on the captured output) is undone afterwards, so
    later tests do not log to a closed file."""
    root = logging.getLogger()
    saved = structlog.get_config(), root.handlers[:], root.level
    yield
    structlog.configure(**saved[0])
    structlog.contextvars.clear_contextvars()
    root.handlers[:], root.level = saved[1], saved[2]


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's environment: this test's database."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MS8_SCHEMA", SCHEMA)


async def run(*argv: str) -> int:
    """The command's exit status. In a thread: it runs its own event loop."""
    with pytest.raises(SystemExit) as exit_:
        await asyncio.to_thread(cli.main, list(argv))
    return int(exit_.value.code or 0)


@pytest.mark.usefixtures("cli_env", "cli_logging")
async def test_queue_cancel_waiting_cancels_waiting_jobs_and_prints_the_count(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    await core.send_many(db, [core.JobSpec.of("maint") for _ in range(4)])
    [active] = await core.fetch(db, {"maint": 1}, "w1")
    assert await run("queue", "cancel-waiting", "maint") == 0
    assert orjson.loads(capsys.readouterr().out) == {"cancelled": 3}
    assert (await core.get_job(db, active.id)).state == "active"
    assert (await core.count_jobs(db))["maint"] == {"active": 1, "cancelled": 3}


@pytest.mark.usefixtures("cli_env", "cli_logging")
async def test_an_unknown_queue_is_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("queue", "cancel-waiting", "nosuch") == 2
    assert capsys.readouterr().err.endswith("queue 'nosuch' does not exist\n")


def out(capsys: pytest.CaptureFixture[str]) -> object:
    return orjson.loads(capsys.readouterr().out)


@pytest.mark.usefixtures("cli_env", "cli_logging")
async def test_send_job_cancel_and_resume(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("send", "mail", '{"to": "a@example.com"}', "--priority", "7",
                     "--delay", "60", "--singleton-key", "a") == 0
    sent = out(capsys)
    assert sent["created"] is True
    job = await core.get_job(db, sent["id"])
    assert (job.data, job.priority, job.singleton_key) == ({"to": "a@example.com"}, 7, "a")
    assert job.start_after > job.created_at
    assert await run("send", "mail", "{}", "--singleton-key", "a") == 0
    assert out(capsys) == {"id": sent["id"], "created": False}

    assert await run("job", str(sent["id"])) == 0
    shown = out(capsys)
    assert (shown["id"], shown["queue"], shown["state"]) == (sent["id"], "mail", "created")
    assert await run("cancel", str(sent["id"])) == 0
    assert out(capsys) == {"cancelled": [sent["id"]]}
    assert (await core.get_job(db, sent["id"])).state == "cancelled"
    assert await run("resume", str(sent["id"])) == 0
    assert out(capsys) == {"resumed": [sent["id"]]}
    assert (await core.get_job(db, sent["id"])).state == "created"


@pytest.mark.usefixtures("cli_env", "cli_logging")
async def test_queue_show_pause_resume_and_set(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    await core.create_queue(db, "reports")
    assert await run("queue", "pause", "reports") == 0
    capsys.readouterr()
    assert (await core.get_queue(db, "reports")).paused
    assert await run("queue", "resume", "reports") == 0
    capsys.readouterr()
    assert not (await core.get_queue(db, "reports")).paused
    assert await run("queue", "set", "reports", "retry_limit=5", "fleet_limit=3",
                     "dead_letter=reports-dead") == 0
    capsys.readouterr()
    policy = await core.get_queue(db, "reports")
    assert (policy.retry_limit, policy.fleet_limit, policy.dead_letter) == (
        5, 3, "reports-dead")
    assert await run("queue", "show", "reports") == 0
    shown = out(capsys)
    assert (shown["name"], shown["retry_limit"], shown["fleet_limit"]) == ("reports", 5, 3)
    assert await run("queue", "set", "reports", "retry_limit") == 2
    assert "key=value" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_env", "cli_logging")
async def test_stats_and_redrive(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    await core.create_queue(db, "work", retry_limit=0, dead_letter="dead")
    await core.send(db, "work", {"n": 1})
    [job] = await core.fetch(db, {"work": 1}, "w1")
    await core.fail_many(db, [core.Failure(job.id, "boom")], worker_id="w1")
    assert await run("stats") == 0
    table = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]}
    assert "work" in rows and "dead" in rows, table
    assert await run("redrive", "dead") == 0
    redriven = out(capsys)
    assert isinstance(redriven, dict) and len(redriven["redriven"]) == 1
    assert (await core.count_jobs(db))["work"].get("created") == 1


@pytest.mark.usefixtures("cli_env", "cli_logging")
async def test_migrate_on_a_current_schema_changes_nothing(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await db.pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.schema_version")
    assert await run("migrate") == 0
    assert await db.pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.schema_version") == before


@pytest.mark.usefixtures("cli_env", "cli_logging")
async def test_bad_input_is_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("send", "q", "{not json") == 2
    assert await run("job", "999999") == 2
    assert await run("send", "BAD QUEUE") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("ms8-jobs: ") for line in err), err


@pytest.mark.usefixtures("cli_logging")
async def test_db_start_url_status_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The embedded server's commands on a cluster of the test's own."""
    monkeypatch.setenv("MS8_DATA_DIR", str(tmp_path))
    assert await run("db", "status") == 3
    assert capsys.readouterr().out.startswith("stopped")
    try:
        assert await run("db", "start") == 0
        masked = capsys.readouterr().out.strip()
        assert await run("db", "url") == 0
        url = capsys.readouterr().out.strip()
        assert masked != url and masked.startswith("postgresql://")
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
        assert await run("db", "status") == 0
        assert capsys.readouterr().out.startswith("running")
    finally:
        assert await run("db", "stop") == 0
    assert "stopped" in capsys.readouterr().out
    assert await run("db", "status") == 3
