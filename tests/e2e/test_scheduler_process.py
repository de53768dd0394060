"""``python -m scheduler`` as real subprocesses: replicas, restarts, live changes, outages.

Each test starts schedulers against a database of its own, drives them (signals, the
CLI, a PostgreSQL restart) and checks the firings table and the jobs it sent: one job
per fire time, none missing. Subprocesses are always killed at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import asyncpg
import orjson
import pytest
import pytest_asyncio

from shared.cron import CronSchedule
from tests.conftest import SCHEMA, with_database
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]


class Scheduler:
    """One ``python -m scheduler`` subprocess, its JSON log lines in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in kill()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scheduler"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_bytes().splitlines():
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict):
                out.append(event)
        return out

    def logged(self, text: str, **fields: Any) -> list[dict[str, Any]]:
        return [e for e in self.events() if str(e.get("event", "")).startswith(text)
                and all(e.get(k) == v for k, v in fields.items())]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait for the exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Scheduler]]:
    """Start schedulers on a database URL; every one is killed when the test ends."""
    started: list[Scheduler] = []

    def start(url: str, **env: str) -> Scheduler:
        full = {k: v for k, v in os.environ.items() if k != "DATABASE_DIRECT_URL"}
        full.update({"DATABASE_URL": url, "MS8_SCHEMA": SCHEMA, "MS8_LOG_FORMAT": "json",
                     "MS8_SCHEDULER_LISTEN_CHECK_SECONDS": "0.5", **env})
        scheduler = Scheduler(full, tmp_path / f"scheduler-{len(started)}.log")
        started.append(scheduler)
        return scheduler

    yield start
    for scheduler in started:
        scheduler.kill()


async def run_cli(url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": url, "MS8_SCHEMA": SCHEMA, "MS8_LOG_LEVEL": "warning"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scheduler", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli(url: str, *args: str) -> str:
    status, out, err = await run_cli(url, *args)
    assert status == 0, err
    return out


@pytest_asyncio.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_url)
    yield connection
    await connection.close()


async def firings(conn: asyncpg.Connection, name: str) -> list[Any]:
    return await conn.fetch(
        f'SELECT * FROM "{SCHEMA}".firings WHERE schedule = $1 ORDER BY fire_time', name)


async def job_ids(conn: asyncpg.Connection, queue: str) -> list[int]:
    rows = await conn.fetch(
        f'SELECT id FROM "{SCHEMA}".jobs WHERE queue = $1 UNION ALL '
        f'SELECT id FROM "{SCHEMA}".history WHERE queue = $1', queue)
    return sorted(r["id"] for r in rows)


async def until_clock_passes(moment: datetime, timeout: float = 30) -> None:
    await wait_until(lambda: datetime.now(UTC) >= moment, timeout=timeout,
                     message=f"the clock to pass {moment.isoformat()}")


def assert_one_job_per_firing(rows: list[Any], jobs: list[int]) -> None:
    assert all(r["job_created"] and r["job_id"] is not None for r in rows)
    assert sorted(r["job_id"] for r in rows) == jobs


@pytest.mark.slow
async def test_three_replicas_send_exactly_one_job_per_firing(
    db_url: str, conn: asyncpg.Connection, spawn: Callable[..., Scheduler],
) -> None:
    await cli(db_url, "add", "pulse", "*/2 * * * * *", "--queue", "pulse")
    replicas = [spawn(db_url) for _ in range(3)]
    for replica in replicas:
        await wait_until(lambda r=replica: r.logged("schedule armed", schedule="pulse"),
                         timeout=30, message="a replica to arm the schedule")
    started = datetime.now(UTC)
    # Halfway, one replica dies without warning and another takes its place.
    await until_clock_passes(started + timedelta(seconds=30), timeout=40)
    replicas[1].kill()
    replicas.append(spawn(db_url))
    await until_clock_passes(started + timedelta(seconds=62), timeout=45)
    for replica in replicas[:1] + replicas[2:]:
        assert replica.stop() == 0

    rows = [r for r in await firings(conn, "pulse") if r["fire_time"] > started]
    expected = list(CronSchedule.of("*/2 * * * * *").between(
        started, rows[-1]["fire_time"]))
    assert [r["fire_time"] for r in rows] == expected  # none missing, none twice
    assert len(rows) >= 29
    assert_one_job_per_firing(await firings(conn, "pulse"), await job_ids(conn, "pulse"))
    # Each fire time was claimed by exactly one replica: their "fired" lines add up.
    claimed = sum(len(r.logged("schedule fired", schedule="pulse"))
                  + len(r.logged("missed firing caught up", schedule="pulse"))
                  for r in replicas)
    assert claimed == len(await firings(conn, "pulse"))


async def test_a_firing_missed_while_stopped_is_sent_once_on_restart(
    db_url: str, conn: asyncpg.Connection, spawn: Callable[..., Scheduler],
) -> None:
    schedule = CronSchedule.of("*/6 * * * * *")
    await cli(db_url, "add", "six", "*/6 * * * * *", "--queue", "six")
    first = spawn(db_url)
    await wait_until(lambda: firings(conn, "six"), timeout=30, message="a first firing")
    assert first.stop() == 0
    missed = schedule.next_after(datetime.now(UTC))
    assert missed is not None
    await until_clock_passes(missed + timedelta(milliseconds=200))
    second = spawn(db_url)
    await wait_until(lambda: second.logged("missed firing caught up", schedule="six"),
                     timeout=30, message="the catch-up")
    at_missed = [r for r in await firings(conn, "six") if r["fire_time"] == missed]
    assert [r["kind"] for r in at_missed] == ["catch-up"]
    # And it carries on at the next fire time, as scheduled.
    await wait_until(lambda: second.logged("schedule fired", schedule="six"), timeout=30,
                     message="a scheduled firing after the restart")
    assert second.stop() == 0
    rows = await firings(conn, "six")
    assert len({r["fire_time"] for r in rows}) == len(rows)
    assert_one_job_per_firing(rows, await job_ids(conn, "six"))


async def test_outside_the_grace_window_a_missed_firing_is_skipped(
    db_url: str, conn: asyncpg.Connection, spawn: Callable[..., Scheduler],
) -> None:
    await cli(db_url, "add", "hourly", "0 * * * *", "--queue", "hourly")
    await conn.execute(f"UPDATE \"{SCHEMA}\".schedules SET armed_at = now() - interval '1 day' "
                       "WHERE name = 'hourly'")
    top_of_hour = CronSchedule.of("0 * * * *").latest_at_or_before(datetime.now(UTC))
    strict = spawn(db_url, MS8_SCHEDULER_GRACE_SECONDS="1")
    await wait_until(lambda: strict.logged("firing missed", schedule="hourly"), timeout=30,
                     message="the missed-firing line")
    assert strict.logged("firing missed")[0]["fire_time"] == top_of_hour.isoformat()
    assert strict.stop() == 0
    assert await firings(conn, "hourly") == []
    lenient = spawn(db_url, MS8_SCHEDULER_GRACE_SECONDS="7200")
    await wait_until(lambda: firings(conn, "hourly"), timeout=30, message="the catch-up")
    assert lenient.stop() == 0
    rows = await firings(conn, "hourly")
    assert [(r["fire_time"], r["kind"]) for r in rows] == [(top_of_hour, "catch-up")]


async def test_a_change_while_running_is_followed_by_the_next_firing(
    db_url: str, conn: asyncpg.Connection, spawn: Callable[..., Scheduler],
) -> None:
    await cli(db_url, "add", "flip", "*/2 * * * * *", "--queue", "flip")
    scheduler = spawn(db_url)
    await wait_until(lambda: _count_at_least(conn, "flip", 2), timeout=30,
                     message="two even-second firings")
    await cli(db_url, "update", "flip", "--cron", "1-59/2 * * * * *")
    await wait_until(lambda: _odd_count_at_least(conn, "flip", 3), timeout=30,
                     message="three firings after the change")
    assert scheduler.stop() == 0
    rows = await firings(conn, "flip")
    # The change takes effect once the scheduler hears of it, a moment after the
    # update commits: even seconds up to then, odd ones only afterwards, never mixed.
    parities = [r["fire_time"].second % 2 for r in sorted(rows, key=lambda r: r["fire_time"])]
    switch = parities.index(1)
    assert parities[:switch].count(0) >= 2 and set(parities[:switch]) == {0}
    assert set(parities[switch:]) == {1}
    assert scheduler.logged("schedule re-armed", schedule="flip")
    assert_one_job_per_firing(rows, await job_ids(conn, "flip"))
    listed = orjson.loads(await cli(db_url, "list", "--json"))
    flip = next(s for s in listed if s["name"] == "flip")
    assert flip["cron"] == "1-59/2 * * * * *"
    assert flip["last_firing"]["job_id"] == rows[-1]["job_id"]


async def _count_at_least(conn: asyncpg.Connection, name: str, n: int) -> bool:
    return len(await firings(conn, name)) >= n


async def _odd_count_at_least(conn: asyncpg.Connection, name: str, n: int) -> bool:
    return len([r for r in await firings(conn, name) if r["fire_time"].second % 2]) >= n


async def test_the_cli_refuses_bad_input_naming_it_and_saves_nothing(
    db_url: str, conn: asyncpg.Connection,
) -> None:
    cases = [
        (["add", "bad", "61 * * * *", "--queue", "q"], 2, "cron: cron expression '61 * * * *'"),
        (["add", "bad", "* * * * *", "--queue", "q", "--timezone", "Moon/Base"], 2,
         "timezone: time zone 'Moon/Base' is unknown"),
        (["add", "bad", "* * * * *", "--queue", "q", "--data", "{oops"], 2, "--data: '{oops'"),
        (["update", "daily-batch", "--cron", "* *"], 2, "cron: cron expression '* *' has 2"),
        (["run-now", "nope"], 1, "schedule 'nope' does not exist"),
    ]
    for args, status, words in cases:
        got, _out, err = await run_cli(db_url, *args)
        assert (got, words in err) == (status, True), (args, err)
    assert await conn.fetchval(f'SELECT count(*) FROM "{SCHEMA}".schedules') == 1
    seed = orjson.loads(await cli(db_url, "show", "daily-batch", "--json"))
    assert (seed["cron"], seed["timezone"], seed["queue"]) == ("0 2 * * *", "UTC", "daily-batch")
    assert seed["next_fire"].endswith("T02:00:00+00:00")


# --------------------------------------------------------------------------- outage


@pytest.mark.slow
async def test_it_reconnects_after_postgres_restarts(
    own_cluster: Any, spawn: Callable[..., Scheduler],
) -> None:
    dsn = await asyncio.to_thread(own_cluster.start)
    url = with_database(dsn, "postgres")
    await cli(url, "add", "tick", "* * * * * *", "--queue", "tick")
    scheduler = spawn(url, MS8_SCHEDULER_GRACE_SECONDS="600")

    async def count() -> int:
        c = await asyncpg.connect(url)
        try:
            return len(await firings(c, "tick"))
        finally:
            await c.close()

    await wait_until(lambda: _at_least(count, 2), timeout=30, message="firings before")
    await asyncio.to_thread(own_cluster.stop)
    await wait_until(lambda: scheduler.logged("database unreachable"), timeout=30,
                     message="the scheduler to notice")
    await wait_until(
        lambda: scheduler.logged("firing failed") or scheduler.logged("schedule sync failed"),
        timeout=30, message="a failed firing or sync while the database is down")
    assert scheduler.alive()
    assert await asyncio.to_thread(own_cluster.start) == dsn  # same port: same URL
    before = await count()
    await wait_until(lambda: _at_least(count, before + 3), timeout=45,
                     message="firings after the restart")
    assert scheduler.alive()
    assert scheduler.stop() == 0
    c = await asyncpg.connect(url)
    try:
        rows = await firings(c, "tick")
        assert len({r["fire_time"] for r in rows}) == len(rows)
        assert_one_job_per_firing(rows, await job_ids(c, "tick"))
    finally:
        await c.close()


async def _at_least(count: Callable[[], Any], n: int) -> bool:
    return await count() >= n
