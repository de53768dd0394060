"""The scenarios every system runs (1-4 of the issue), each in fresh databases.

1. ``enqueue``: bulk enqueue of N jobs through the system's bulk API (jobs/s).
2. ``drain``: N queued no-op jobs, then 1 or 2 worker processes; the rate is N over the
   span from the first job's start to the last job's end, read from the system's own
   tables after the drain (worker start-up is not counted). The peak resident memory
   of the single worker is recorded along the way.
3. ``latency``: an idle worker, then single sends at a steady rate; for each job the
   time from the send's commit (``time.time()`` in the sender, right after the send
   returned) to its handler's first line (``time.time()`` in the worker, reported by
   ``bench.probe``).
4. ``idle``: an idle worker that has run one job, left alone; statements per second it
   sends to its database (BullMQ: commands to its Redis). The systems run this one side
   by side (each alone in its own database), since it measures what they send, not how
   fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import asyncpg

from bench import connections, processes, statements
from bench.connections import Held
from bench.context import Context, poll, watch
from bench.cpu import ServerCpu, processes_seconds
from bench.probe import StartProbe
from bench.profile import Profiler
from bench.results import BEST_PEER, MS8, Target
from bench.server import database_of
from bench.systems import SendOne, System, Window

MB = 1024 * 1024


def _slug(system: System) -> str:
    return system.name.lower().replace("-", "")


async def enqueue(ctx: Context, system: System) -> None:
    n = ctx.sizes.enqueue_jobs
    metric = ctx.report.metric(
        "enqueue", f"bulk enqueue of {n:,}", "jobs/s", "higher",
        target=Target("≥ 100,000/s (30k ≤ 0.3 s)", 100_000, "higher"))
    for rep in range(ctx.sizes.reps):
        async with ctx.server.database(f"enqueue_{_slug(system)}") as url:
            await system.install(url)
            seconds = await system.enqueue_many(url, n)
        metric.add(system.name, n / seconds)
        ctx.say(f"{system.name}: enqueued {n:,} in {seconds:.3f} s (run {rep + 1})")


@dataclass(frozen=True)
class Drained:
    window: Window
    complete: bool  # False: cut short by the cap
    peak_rss: int  # of the first worker, bytes
    worker_cpu: float | None  # CPU seconds per job, all workers
    server_cpu: float | None  # CPU seconds per job, PostgreSQL
    connections: Held | None = None  # peak connections of each worker, when counted


async def drain(ctx: Context, system: System, workers: int) -> None:
    n = ctx.sizes.drain_jobs
    per_k = ctx.report.metric  # the CPU rows say where the time of a 1-worker drain goes
    if workers == 1:
        metric = ctx.report.metric(
            "drain_1", f"drain of {n:,}, 1 worker", "jobs/s", "higher",
            target=Target("≥ 2x the best peer", 2.0, "higher", peer=BEST_PEER))
        rss = ctx.report.metric(
            "drain_rss", f"worker peak RSS draining {n:,}", "MB", "lower", digits=1,
            target=Target("≤ 150 MB", 150.0, "lower"))
        worker_cpu = per_k("drain_cpu_worker", "drain, 1 worker: its CPU per 1,000 jobs",
                           "ms", "lower")
        server_cpu = per_k("drain_cpu_server",
                           "drain, 1 worker: its server's CPU (PostgreSQL; Redis) per 1,000 jobs",
                           "ms", "lower")
    else:
        metric = ctx.report.metric(
            f"drain_{workers}", f"drain of {n:,}, {workers} workers", "jobs/s", "higher",
            target=Target("> 1 worker", 1.0, "higher", versus="drain_1"))
    if ctx.profile and system.name == MS8 and workers == 1:
        # A run of its own: the sampler takes CPU from the measured processes.
        async with ctx.server.database(f"drain_{_slug(system)}") as url:
            await drain_once(ctx, system, url, workers, profile=True)
    for rep in range(ctx.sizes.reps):
        async with ctx.server.database(f"drain_{_slug(system)}") as url:
            done = await drain_once(ctx, system, url, workers)
        window = done.window
        if not window.rate:
            raise RuntimeError(f"{system.name}: no job finished within the drain cap")
        note = None
        if not done.complete:
            note = (f"cut short after {ctx.sizes.drain_cap:.0f} s: rate over the "
                    f"{window.finished:,} of {n:,} jobs done by then")
        metric.add(system.name, window.rate, note)
        if workers == 1:
            rss.add(system.name, done.peak_rss / MB)
            if done.worker_cpu is not None:
                worker_cpu.add(system.name, done.worker_cpu * 1e6)
            if done.server_cpu is not None:
                server_cpu.add(system.name, done.server_cpu * 1e6)
        ctx.say(f"{system.name}: drained {window.finished:,} with {workers} worker(s) in "
                f"{window.seconds:.2f} s = {window.rate:,.0f}/s (run {rep + 1})")
        if not done.complete:
            break  # a capped drain is not repeated: its rate is already known


async def drain_once(
    ctx: Context, system: System, url: str, workers: int, *, profile: bool = False,
    jobs_count: int | None = None, count_connections: bool = False,
) -> Drained:
    """Fill the queue (``drain_jobs``, or ``jobs_count``), start the workers, wait until it
    is empty (or the cap passes); with ``count_connections``, sample the connections each
    worker holds meanwhile."""
    n = ctx.sizes.drain_jobs if jobs_count is None else jobs_count
    await system.install(url)
    await system.enqueue_many(url, n)
    conn = await asyncpg.connect(url)
    admin = await ctx.server.admin() if count_connections else None
    try:
        await conn.execute("ANALYZE")  # every system gets the statistics of its backlog
        postgres = await ServerCpu.find(conn, whole_server=ctx.server.owned)
        server = _server_cpu(system, postgres)
        async with contextlib.AsyncExitStack() as stack:
            procs = await stack.enter_async_context(
                processes.running(system.workers(url, workers, {}), ctx.log_dir))
            held = None if admin is None else await stack.enter_async_context(
                connections.sampled(admin, database_of(url), procs))
            deadline = time.monotonic() + ctx.sizes.drain_cap
            # CPU is counted from the first job done on, so that start-up is left out.
            await poll(partial(below, system, conn, n), procs, deadline=deadline,
                       interval=0.005)
            left = await system.unfinished(conn)
            pids = [p.pid for p in procs]
            worker0 = processes_seconds(pids)
            server0 = server.seconds() if server else 0.0
            profiler = Profiler.start(procs[0], ctx.log_dir / "drain-profile") if profile \
                else None
            complete = await poll(partial(below, system, conn, 1), procs, deadline=deadline)
            jobs = left - await system.unfinished(conn)
            worker1 = processes_seconds(pids)
            server1 = server.seconds() if server else 0.0
            if profiler is not None:
                ctx.report.sections["profile: worker draining"] = profiler.finish()
            peak = procs[0].peak_rss
        return Drained(
            window=await system.window(conn), complete=complete, peak_rss=peak,
            worker_cpu=(worker1 - worker0) / jobs if jobs else None,
            server_cpu=(server1 - server0) / jobs if jobs and server else None,
            connections=held)
    finally:
        await conn.close()
        if admin is not None:
            await admin.close()


class _Seconds(Protocol):
    def seconds(self) -> float: ...


@dataclass(frozen=True)
class _OwnServer:
    """The CPU of a system's own store (BullMQ's Redis) instead of PostgreSQL's."""

    read: Callable[[], float]

    def seconds(self) -> float:
        return self.read()


def _server_cpu(system: System, postgres: ServerCpu | None) -> _Seconds | None:
    own = getattr(system, "server_seconds", None)
    return _OwnServer(own) if own is not None else postgres


async def below(system: System, conn: asyncpg.Connection, count: int) -> bool:
    """Fewer than ``count`` of the system's jobs are unfinished."""
    return await system.unfinished(conn) < count


async def _wait_started(probe: StartProbe, send: SendOne, procs: Sequence[processes.Process],
                        timeout: float) -> None:
    """Send one job and wait until a handler ran it: the worker is up and listening."""
    await send("warm-up")  # also warms the sender's caches (pg-boss: its queue's)
    await watch(probe.wait_for({"warm-up"}, timeout), procs, timeout=timeout,
                what="the worker's first job")


async def latency(ctx: Context, system: System) -> None:
    n, rate = ctx.sizes.latency_jobs, ctx.sizes.latency_rate
    label = f"enqueue-to-start, {n} sends at {rate:.0f}/s"
    targets = {50: Target("≤ 1 ms", 1.0, "lower"), 95: None, 99: Target("≤ 5 ms", 5.0, "lower")}
    metrics = {p: ctx.report.metric(f"latency_p{p}", f"{label}, p{p}", "ms", "lower", digits=2,
                                    target=t) for p, t in targets.items()}
    probe = await StartProbe.open()
    try:
        async with ctx.server.database(f"latency_{_slug(system)}") as url:
            await system.install(url)
            specs = system.workers(url, 1, probe.env)
            async with processes.running(specs, ctx.log_dir) as procs:
                async with system.sender(url) as send:
                    await _wait_started(probe, send, procs, ctx.sizes.start_timeout)
                    committed: dict[str, float] = {}
                    next_at = time.monotonic()
                    for i in range(n):
                        seq = str(i)
                        at = await send(seq)
                        committed[seq] = time.time() if at is None else at
                        next_at += 1 / rate
                        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    await watch(probe.wait_for(set(committed), 30), procs, timeout=30,
                                what="latency jobs")
            claimed = await _claim_times(system, url)
    finally:
        probe.close()
    delays = sorted((probe.starts[seq] - at) * 1000 for seq, at in committed.items())
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    split = None
    if claimed:  # where the time goes: before the claim statement began, and after
        before = [(claimed[s] - at) * 1000 for s, at in committed.items() if s in claimed]
        after = [(probe.starts[s] - claimed[s]) * 1000 for s in committed if s in claimed]
        split = (f"of which send commit → claim statement start (the database's clock) "
                 f"p50 {statistics.median(before):.2f} ms, claim start → handler "
                 f"p50 {statistics.median(after):.2f} ms")
    for p, metric in metrics.items():
        metric.add(system.name, cuts[p - 1], split if p == 50 else None)
    ctx.say(f"{system.name}: latency p50 {cuts[49]:.2f} ms, p99 {cuts[98]:.2f} ms, "
            f"max {delays[-1]:.2f} ms")


async def _claim_times(system: System, url: str) -> dict[str, float]:
    """When each probe job's claim statement started, if the system records it by job."""
    claim_times = getattr(system, "claim_times", None)
    if claim_times is None:
        return {}
    conn = await asyncpg.connect(url)
    try:
        result: dict[str, float] = await claim_times(conn)
        return result
    finally:
        await conn.close()


async def idle(ctx: Context, systems: Sequence[System]) -> None:
    seconds = ctx.sizes.idle_seconds
    has_statements = ctx.server.has_stat_statements
    per_second = ctx.report.metric(
        "idle_statements" if has_statements else "idle_transactions",
        f"idle worker over {seconds:.0f} s, "
        + ("statements" if has_statements else "transactions"), "per s", "lower", digits=2,
        target=Target("≤ 0.1/s", 0.1, "lower"))
    admin = await ctx.server.admin()
    try:
        await statements.reset(admin, has_statements, owned=ctx.server.owned)
    finally:
        await admin.close()
    counted = await asyncio.gather(*(_idle_one(ctx, s, seconds) for s in systems))
    for system, (rate, note) in zip(systems, counted, strict=True):
        per_second.add(system.name, rate, note)


async def _idle_one(ctx: Context, system: System, seconds: float) -> tuple[float, str]:
    has_statements = ctx.server.has_stat_statements
    probe = await StartProbe.open()
    try:
        async with ctx.server.database(f"idle_{_slug(system)}") as url:
            await system.install(url)
            specs = system.workers(url, 1, probe.env)
            async with processes.running(specs, ctx.log_dir) as procs:
                async with system.sender(url) as send:
                    await _wait_started(probe, send, procs, ctx.sizes.start_timeout)
                await asyncio.sleep(ctx.sizes.idle_settle)  # start-up work is not idle cost
                own_store = getattr(system, "activity", None)
                if own_store is not None:  # BullMQ: commands its Redis served
                    before = await own_store()
                    started = time.monotonic()
                    await asyncio.sleep(seconds)
                    after = await own_store()
                    elapsed = time.monotonic() - started
                else:
                    admin = await ctx.server.admin()
                    try:
                        name = database_of(url)
                        before = await statements.sample(admin, name, has_statements)
                        started = time.monotonic()
                        await asyncio.sleep(seconds)  # the measurement itself: time passing
                        after = await statements.sample(admin, name, has_statements)
                        elapsed = time.monotonic() - started
                    finally:
                        await admin.close()
                for proc in procs:
                    proc.check_alive()
    finally:
        probe.close()
    connections = ", ".join(f"{n} {who}" for who, n in sorted(after.connections.items()))
    issued = "; ".join(f"{n}x {query}" for query, n in after.issued_since(before).items())
    if own_store is not None:
        assert before.statements is not None and after.statements is not None
        count = after.statements - before.statements
        note = (f"{count} Redis commands in {elapsed:.0f} s (its store has no statements: "
                f"these stand in their row)" + (f" ({issued})" if issued else "")
                + f"; connections held: {connections or 'none'}")
        ctx.say(f"{system.name}: idle {count / elapsed:.2f}/s ({note})")
        return count / elapsed, note
    if has_statements:
        assert before.statements is not None and after.statements is not None
        count = after.statements - before.statements
    else:
        count = after.transactions - before.transactions
    transactions = after.transactions - before.transactions
    note = (f"{count} statements in {elapsed:.0f} s"
            + (f" ({issued})" if issued else "")
            + f"; {transactions} transactions counted by pg_stat_database (autovacuum "
            f"included, flushed late); connections held: {connections or 'none'}")
    ctx.say(f"{system.name}: idle {count / elapsed:.2f}/s ({note})")
    return count / elapsed, note
