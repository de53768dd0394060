"""The nightly fan-out end to end (scenario 7): schedule firing → the night's summary.

As production runs it: N user-roles seeded, the microservices stub (``python -m stub``,
four sources at 50 ms) and two ``python -m worker`` processes with their default
settings (every queue with a handler; the sources pointed at the stub), all started and
registered before the clock starts. Then the ``daily-batch`` schedule fires through the
scheduler's own path, ``shared.queue.fire_due`` at the schedule's next fire time (the
moment its timer would call it), and the clock stops when ``daily-batch-done`` has
written the night's summary.

The time is read from the database: the firing's ``fired_at`` to the completion of the
daily-batch-done job (the benchmark's own clock, polling at 20 Hz, is shown beside it).
Its parts come from the jobs' times in history: the fan-out job, the collection (first
collect-analytics start to last end) and the summary job. The CPU time of every process
over the run (the stub, the workers, PostgreSQL, this benchmark) says what bounds it:
on two cores, 200 % of a core is all there is.

``MS8_*`` variables set when the benchmark starts reach the workers (processes inherit
the environment), so a setting can be tried without a code change, e.g.
``MS8_SOURCE_CONCURRENCY=50 python -m bench --only fanout``; the settings in force are
printed with the result.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import asyncpg

from analytics import runs, user_roles
from analytics.fanout import COLLECT_QUEUE, DAILY_QUEUE, DONE_QUEUE
from analytics.models import NightlyRun
from analytics.settings import DEFAULT_SOURCE_NAMES
from bench import processes, statements
from bench.context import Context, poll
from bench.cpu import ServerCpu, own_seconds
from bench.ms8 import SCHEMA, Ms8System, opened
from bench.processes import python_module
from bench.profile import Profiler
from bench.results import Target
from bench.server import database_of
from shared import queue

LATENCY_MS = 50
WORKERS = 2
GOAL_SECONDS = 60.0
SCHEDULE = "daily-batch"


@dataclass(frozen=True)
class Parts:
    """Seconds, by the database's clock, from the firing; and where a job's time went."""

    total: float
    fanout_start: float
    fanout_end: float
    first_collect: float
    last_collect: float
    run_ms: tuple[float, float]      # p50, p99 of a collect-analytics run (start → saved)
    sources_ms: tuple[float, float]  # p50, p99 of its collection (every source answered)


async def run(ctx: Context) -> None:
    n = ctx.sizes.fanout_user_roles
    label = (f"nightly fan-out of {n:,} user-roles, {len(DEFAULT_SOURCE_NAMES)} sources at "
             f"{LATENCY_MS} ms, {WORKERS} workers: firing → summary")
    goal = Target(f"≤ {GOAL_SECONDS:.0f} s", GOAL_SECONDS, "lower") \
        if ctx.sizes.name == "full" else None
    seconds = ctx.report.metric("fanout", label, "s", "lower", digits=1, target=goal)
    rate = ctx.report.metric("fanout_rate", "nightly fan-out: user-roles collected",
                             "per s", "higher")
    cpu = {who: ctx.report.metric(f"fanout_cpu_{who}", f"nightly fan-out: {what} CPU",
                                  "% of a core", "lower")
           for who, what in (("stub", "stub"), ("workers", "workers'"),
                             ("server", "PostgreSQL"), ("bench", "benchmark's"))}
    machine = os.getloadavg()[0]
    tried = {k: v for k, v in sorted(os.environ.items())
             if k.startswith(("MS8_WORKER", "MS8_SOURCE", "MS8_FANOUT", "MS8_COMPLETE"))}
    settings = ", ".join(f"{k}={v}" for k, v in tried.items()) or "the defaults"
    async with ctx.server.database("fanout") as url:
        await Ms8System().install(url)
        async with opened(url) as db:
            await user_roles.seed(db, n)
        port = _free_port()
        stub = ("fanout-stub", python_module(
            "stub", "--port", str(port), "--latency-ms", str(LATENCY_MS)),
            {"MS8_LOG_LEVEL": "warning"})
        sources = ",".join(f"{name}=http://127.0.0.1:{port}/{name}"
                           for name in DEFAULT_SOURCE_NAMES)
        workers = [(f"fanout-worker-{i}", python_module("worker"), {
            "DATABASE_URL": url, "MS8_SCHEMA": SCHEMA, "MS8_LOG_LEVEL": "warning",
            "MS8_SOURCES": sources}) for i in range(WORKERS)]
        async with processes.running([stub, *workers], ctx.log_dir) as procs:
            conn = await asyncpg.connect(url)
            try:
                await _ready(ctx, conn, port, procs)
                measured = await _fire_and_wait(ctx, url, conn, procs)
            finally:
                await conn.close()
            received = await _stub_received(port)
    parts, wall, night, cpu_seconds = measured
    if night.total != n or (night.complete or 0) + (night.partial or 0) != n:
        raise RuntimeError(f"the night's summary does not add up to {n:,}: {night}")
    seconds.add("ms8-jobs", parts.total, (
        f"{n:,} user-roles, {received:,} requests to the stub; from the firing: fan-out "
        f"{parts.fanout_start:.2f}–{parts.fanout_end:.2f} s, collection "
        f"{parts.first_collect:.2f}–{parts.last_collect:.2f} s, summary written at "
        f"{parts.total:.2f} s (the benchmark's clock: {wall:.2f} s); a job's run p50 "
        f"{parts.run_ms[0]:.0f} ms, p99 {parts.run_ms[1]:.0f} ms, of which its sources p50 "
        f"{parts.sources_ms[0]:.0f} ms, p99 {parts.sources_ms[1]:.0f} ms; complete "
        f"{night.complete:,}, partial {night.partial:,}, failed {night.failed:,}; "
        f"load average {machine:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
        f"worker settings: {settings}"))
    rate.add("ms8-jobs", n / parts.total)
    for who, spent in cpu_seconds.items():
        cpu[who].add("ms8-jobs", spent / wall * 100,
                      f"{spent:.1f} s of CPU, {spent / n * 1e3:.2f} ms per user-role")
    ctx.say(f"fan-out of {n:,}: {parts.total:.2f} s from the firing to the summary "
            f"(collection {parts.last_collect - parts.first_collect:.2f} s); CPU "
            + ", ".join(f"{w} {s:.1f} s" for w, s in cpu_seconds.items()))


async def _ready(ctx: Context, conn: asyncpg.Connection, port: int,
                 procs: list[processes.Process]) -> None:
    """The stub answers and every worker has registered (it then fetches by itself)."""
    deadline = time.monotonic() + ctx.sizes.start_timeout

    async def up() -> bool:
        try:
            async with aiohttp.ClientSession() as http, \
                    http.get(f"http://127.0.0.1:{port}/health") as answer:
                if answer.status != 200:
                    return False
        except aiohttp.ClientError:
            return False
        return bool(await conn.fetchval(f'SELECT count(*) FROM "{SCHEMA}".workers')
                    >= WORKERS)

    if not await poll(up, procs, deadline=deadline):
        raise TimeoutError("the stub or the workers did not come up")


async def _fire_and_wait(
    ctx: Context, url: str, conn: asyncpg.Connection, procs: list[processes.Process],
) -> tuple[Parts, float, NightlyRun, dict[str, float]]:
    server = await ServerCpu.find(conn, whole_server=ctx.server.owned)
    admin = await ctx.server.admin()
    pids = {"stub": [procs[0].pid], "workers": [p.pid for p in procs[1:]]}

    def cpu_now() -> dict[str, float]:
        spent = {who: sum(own_seconds(pid) for pid in group) for who, group in pids.items()}
        spent["server"] = server.seconds() if server else 0.0
        spent["bench"] = time.process_time()
        return spent

    async with opened(url) as db:
        schedule = await queue.get_schedule(db, SCHEDULE)
        fire_at = schedule.next_fire(datetime.now(UTC))
        assert fire_at is not None
        queries = await statements.time_by_query(admin, database_of(url))
        profilers = {f"profile: {p.name} in the nightly fan-out": Profiler.start(
            p, ctx.log_dir / f"{p.name}-profile") for p in procs[:2]} if ctx.profile else {}
        before = cpu_now()
        started = time.perf_counter()
        outcome = await queue.fire_due(db, SCHEDULE, now=fire_at)
        if outcome.firing is None:
            raise RuntimeError(f"the schedule did not fire: {outcome.status}")
        night = outcome.firing.fire_time.astimezone(UTC).date()

        async def summarised() -> bool:  # the summary job's end is saved
            return bool(await conn.fetchval(
                f'SELECT count(*) FROM "{SCHEMA}".history WHERE queue = $1', DONE_QUEUE))

        deadline = time.monotonic() + ctx.sizes.fanout_cap
        if not await poll(summarised, procs, deadline=deadline, interval=0.05):
            raise TimeoutError(f"no summary {ctx.sizes.fanout_cap:.0f} s after the firing")
        wall = time.perf_counter() - started
        after = cpu_now()
        for title, profiler in profilers.items():
            ctx.report.sections[title] = profiler.finish()
        summary = await runs.get(db, night)
    try:
        busiest = statements.busiest(
            queries, await statements.time_by_query(admin, database_of(url)))
    finally:
        await admin.close()
    if busiest:
        ctx.report.sections["nightly fan-out: the database's busiest statements"] = "\n".join(
            f"{ms / 1000:8.2f} s {calls:>8,} calls  {query}" for query, calls, ms in busiest)
    parts = await _parts(conn, outcome.firing.fired_at)
    return parts, wall, summary, {who: after[who] - before[who] for who in before}


async def _parts(conn: asyncpg.Connection, fired_at: datetime) -> Parts:
    rows = {row["queue"]: row for row in await conn.fetch(
        f"SELECT queue, min(started_at) AS first_start, max(completed_at) AS last_end "
        f'FROM "{SCHEMA}".history WHERE queue = ANY($1::text[]) GROUP BY queue',
        [DAILY_QUEUE, COLLECT_QUEUE, DONE_QUEUE])}

    def since(queue_name: str, column: str) -> float:
        return (rows[queue_name][column] - fired_at).total_seconds()

    run = await conn.fetchrow(
        f"SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch "
        f"FROM completed_at - started_at) * 1000) AS ms FROM \"{SCHEMA}\".history "
        f"WHERE queue = $1", COLLECT_QUEUE)
    sources = await conn.fetchrow(
        f"SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY duration_ms) AS ms "
        f'FROM "{SCHEMA}_analytics".snapshots')
    return Parts(
        run_ms=tuple(run["ms"]), sources_ms=tuple(sources["ms"]),
        total=since(DONE_QUEUE, "last_end"),
        fanout_start=since(DAILY_QUEUE, "first_start"),
        fanout_end=since(DAILY_QUEUE, "last_end"),
        first_collect=since(COLLECT_QUEUE, "first_start"),
        last_collect=since(COLLECT_QUEUE, "last_end"))


async def _stub_received(port: int) -> int:
    """Requests the stub received, every source together (its admin counters)."""
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/_admin/sources") as answer:
        sources = (await answer.json())["sources"]
    return sum(int(s["counters"]["received"]) for s in sources.values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
