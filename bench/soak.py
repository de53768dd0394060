"""The soak (``--only soak``): a million jobs at a steady rate, retention pruning on —
do the tables, their indexes and the fetch stay flat?

One fresh database; the no-op queue and a fetch-probe queue created with a short
retention (``soak_retention``), two ``python -m worker`` processes draining with the
pruner every ``soak_prune_seconds`` (``MS8_PRUNE_SECONDS``; the pruner runs on the
leader). A sender in the benchmark sends ``soak_jobs`` jobs at ``soak_rate`` per second
with ``shared.queue.send_many``, one INSERT every 50 ms (a steady rate with few
statements; a tick that falls behind is caught up by the next ones at once).

Readings: at the start (empty tables), at ``soak_checkpoints`` even points of the
sending, and at the end (every job drained): the heap size (``pg_relation_size``) and
index size (``pg_indexes_size``) of ``jobs`` and ``history``, their live and dead tuples
and autovacuum passes (``pg_stat_user_tables``, which backends flush about once a second),
the no-op queue's backlog, and the time of the core's ``fetch`` of ``fetch_batch`` jobs
of the probe queue (a backlog the workers do not serve) with its ``complete_many``, the
median of ``soak_fetch_reps`` calls, as in the history scenario. Progress is printed
every few seconds.

Flat or not: each reading at the end against the first reading of the steady state, a
ratio above ``FLAT`` counting as growth. The tables of a soak grow until autovacuum has
been through them: history fills for one retention, after which the pruner deletes as
fast as jobs finish (``settle``: one retention and two pruner intervals into the
sending), and the space of what it deleted is reused only after a vacuum pass has freed
it, the indexes' emptied pages only a pass later. Autovacuum visits a database once per
``autovacuum_naptime`` (read from the server; a minute by default), whatever the tables'
scale factors, so the steady start is the first reading taken after ``PASSES`` whole
passes of each table that began after ``settle`` (pass counts from
``pg_stat_user_tables``, checked by the progress loop; the pass under way at ``settle``
is not counted), at most about ``settle + (PASSES + 1) * naptime`` in. A sending too
short for that is compared from its first reading after ``settle`` and says that no
reading was steady. Printed as a table of its own with how the steady start was chosen,
and in the JSON output under ``soak``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import datetime

import asyncpg

from bench import processes
from bench.context import Context, poll
from bench.cpu import ServerCpu, processes_seconds
from bench.history import QUEUE as FETCH_QUEUE
from bench.history import WORKER as FETCHER
from bench.ms8 import NOOP_QUEUE, SCHEMA, Ms8System, opened
from bench.results import MS8, Target, render
from shared.db import Database
from shared.queue import JobSpec, complete_many, create_queue, fetch, send_many

WORKERS = 2
TICK = 0.05  # seconds between two sends of the sender
FLAT = 1.25  # an end / steady-start ratio above this is growth
PASSES = 2  # whole autovacuum passes of each table, after the pruner caught up, before steady
PROGRESS_EVERY = 5.0


@dataclass(frozen=True)
class Reading:
    label: str
    at: float  # seconds since sending began
    sent: int
    backlog: int  # jobs of the no-op queue not finished
    jobs_bytes: int
    jobs_index_bytes: int
    jobs_dead: int
    jobs_autovacuums: int
    history_rows: int
    history_bytes: int
    history_index_bytes: int
    history_dead: int
    history_autovacuums: int
    last_autovacuum_jobs: datetime | None
    last_autovacuum_history: datetime | None
    fetch_ms: float


@dataclass
class Sender:
    """Sends ``total`` jobs at ``rate`` per second; ``sent`` so far."""

    total: int
    rate: float
    sent: int = 0
    started: float = 0.0
    finished: float = 0.0

    async def run(self, db: Database) -> None:
        self.started = time.monotonic()
        batch = max(1, round(self.rate * TICK))
        tick = 0
        while self.sent < self.total:
            count = min(batch, self.total - self.sent)
            await send_many(db, [JobSpec.of(NOOP_QUEUE, {"n": self.sent + i})
                                 for i in range(count)])
            self.sent += count
            tick += 1
            await asyncio.sleep(max(0.0, self.started + tick * batch / self.rate
                                    - time.monotonic()))
        self.finished = time.monotonic()

    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started if self.started else 0.0


_TABLES = f"""
SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes,
       pg_indexes_size(c.oid) AS index_bytes, coalesce(s.n_live_tup, 0) AS live,
       coalesce(s.n_dead_tup, 0) AS dead, coalesce(s.autovacuum_count, 0) AS autovacuums,
       s.last_autovacuum
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE n.nspname = '{SCHEMA}' AND c.relname IN ('jobs', 'history')
"""

# Seconds between two autovacuum visits of a database (a vacuum pass at most that often).
_NAPTIME = "SELECT extract(epoch FROM current_setting('autovacuum_naptime')::interval)::float8"


async def _fetch_ms(db: Database, batch: int, reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        jobs = await fetch(db, {FETCH_QUEUE: batch}, FETCHER)
        times.append((time.perf_counter() - started) * 1000)
        if len(jobs) != batch:
            raise RuntimeError(f"fetch returned {len(jobs)} jobs, expected {batch}")
        await complete_many(db, [(job.id, None) for job in jobs], worker_id=FETCHER)
    return statistics.median(times)


async def _read(ctx: Context, conn: asyncpg.Connection, db: Database, label: str,
                sender: Sender) -> Reading:
    tables = {row["name"]: row for row in await conn.fetch(_TABLES)}
    jobs, history = tables["jobs"], tables["history"]
    backlog = await conn.fetchval(
        f'SELECT count(*) FROM "{SCHEMA}".jobs WHERE queue = $1', NOOP_QUEUE)
    fetch_ms = await _fetch_ms(db, ctx.sizes.fetch_batch, ctx.sizes.soak_fetch_reps)
    reading = Reading(
        label=label, at=sender.elapsed(), sent=sender.sent, backlog=backlog,
        jobs_bytes=jobs["bytes"], jobs_index_bytes=jobs["index_bytes"],
        jobs_dead=jobs["dead"], jobs_autovacuums=jobs["autovacuums"],
        history_rows=history["live"], history_bytes=history["bytes"],
        history_index_bytes=history["index_bytes"], history_dead=history["dead"],
        history_autovacuums=history["autovacuums"],
        last_autovacuum_jobs=jobs["last_autovacuum"],
        last_autovacuum_history=history["last_autovacuum"], fetch_ms=fetch_ms)
    ctx.say(f"soak {label}: {reading.sent:,} sent, backlog {backlog:,}; jobs "
            f"{_mb(reading.jobs_bytes)} + {_mb(reading.jobs_index_bytes)} index, "
            f"{reading.jobs_dead:,} dead; history {reading.history_rows:,} rows "
            f"{_mb(reading.history_bytes)} + {_mb(reading.history_index_bytes)} index, "
            f"{reading.history_dead:,} dead; fetch {fetch_ms:.2f} ms")
    return reading


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


_VACUUMS = f"""
SELECT relname AS name, coalesce(autovacuum_count, 0) AS autovacuums
FROM pg_stat_user_tables WHERE schemaname = '{SCHEMA}' AND relname IN ('jobs', 'history')
"""


@dataclass
class Settling:
    """When the soak may be steady: ``settle`` seconds into the sending (one retention and
    two pruner intervals: history holds a full retention and the pruner deletes as fast
    as jobs finish), then ``PASSES`` autovacuum passes of each table that began after that
    moment. ``baseline``: their pass counts then, as the progress loop saw them first; a
    count grows when a pass ends, so the first pass to end after ``settle`` may have begun
    before it and is not counted (a reading needs ``baseline + PASSES + 1``)."""

    settle: float
    naptime: float  # the server's autovacuum_naptime, seconds
    baseline: dict[str, int] | None = None
    baseline_at: float | None = None

    def steady(self, reading: Reading) -> bool:
        return (self.baseline is not None and reading.at >= self.settle
                and reading.jobs_autovacuums >= self.baseline["jobs"] + PASSES + 1
                and reading.history_autovacuums >= self.baseline["history"] + PASSES + 1)

    def expected(self) -> float:
        """When the steady state begins at the latest, autovacuum keeping its pace: it
        visits a database once per naptime, so the pass under way at ``settle`` and the
        ``PASSES`` after it end within ``PASSES + 1`` naptimes."""
        return self.settle + (PASSES + 1) * self.naptime


async def _progress(ctx: Context, conn: asyncpg.Connection, sender: Sender,
                    settling: Settling) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        backlog = await conn.fetchval(
            f'SELECT count(*) FROM "{SCHEMA}".jobs WHERE queue = $1', NOOP_QUEUE)
        elapsed = sender.elapsed()
        vacuums = {row["name"]: row["autovacuums"] for row in await conn.fetch(_VACUUMS)}
        if settling.baseline is None and elapsed >= settling.settle:
            settling.baseline, settling.baseline_at = vacuums, elapsed
        ctx.say(f"soak: {sender.sent:,}/{sender.total:,} sent in {elapsed:.0f} s "
                f"({sender.sent / elapsed if elapsed else 0:,.0f}/s), backlog {backlog:,}; "
                f"autovacuum passes: jobs {vacuums.get('jobs', 0)}, "
                f"history {vacuums.get('history', 0)}")


async def run(ctx: Context) -> None:
    sizes = ctx.sizes
    n, rate = sizes.soak_jobs, sizes.soak_rate
    checkpoints = max(1, sizes.soak_checkpoints)
    sender = Sender(n, rate)
    settling = Settling(sizes.soak_retention + 2 * sizes.soak_prune_seconds, 0.0)
    env = {"MS8_PRUNE_SECONDS": str(sizes.soak_prune_seconds)}
    async with ctx.server.database("soak") as url:
        system = Ms8System()
        await system.install(url)
        conn = await asyncpg.connect(url)
        try:
            async with opened(url) as db:
                for queue in (NOOP_QUEUE, FETCH_QUEUE):
                    await create_queue(db, queue, retention_seconds=sizes.soak_retention)
                probes = (checkpoints + 3) * (sizes.soak_fetch_reps + 1) * sizes.fetch_batch
                await send_many(db, [JobSpec.of(FETCH_QUEUE, {"n": i}) for i in range(probes)])
                await conn.execute(f'ANALYZE "{SCHEMA}".jobs')
                await _fetch_ms(db, sizes.fetch_batch, 1)  # warm up: statements, caches
                settling.naptime = await conn.fetchval(_NAPTIME)
                server = await ServerCpu.find(conn, whole_server=ctx.server.owned)
                async with processes.running(system.workers(url, WORKERS, env),
                                             ctx.log_dir) as procs:
                    readings, cpu = await _soak(ctx, url, conn, db, sender, procs, server,
                                                settling)
        finally:
            await conn.close()
    _report(ctx, sender, readings, cpu, settling)


async def _soak(ctx: Context, url: str, conn: asyncpg.Connection, db: Database,
                sender: Sender, procs: list[processes.Process], server: ServerCpu | None,
                settling: Settling) -> tuple[list[Reading], dict[str, float | None]]:
    sizes = ctx.sizes
    checkpoints = max(1, sizes.soak_checkpoints)
    duration = sender.total / sender.rate
    readings = [await _read(ctx, conn, db, "start", sender)]
    pids = [p.pid for p in procs]
    worker0, server0 = processes_seconds(pids), server.seconds() if server else 0.0
    progress_conn = await asyncpg.connect(url)
    sending = asyncio.create_task(sender.run(db))
    progress = asyncio.create_task(_progress(ctx, progress_conn, sender, settling))
    try:
        for k in range(1, checkpoints + 1):
            due = duration * k / checkpoints
            while not sending.done() and sender.elapsed() < due:
                await asyncio.sleep(min(0.1, max(0.0, due - sender.elapsed())))
                for proc in procs:
                    proc.check_alive()
            if sending.done():
                sending.result()  # a failed send ends the soak with its error
            readings.append(await _read(ctx, conn, db, f"{100 * k // checkpoints} % sent",
                                        sender))
        await sending
        drain_cap = max(60.0, duration)
        ctx.say(f"soak: every job sent in {sender.elapsed():.1f} s; waiting for the drain")

        async def drained_all() -> bool:
            return not await conn.fetchval(
                f'SELECT count(*) FROM "{SCHEMA}".jobs WHERE queue = $1', NOOP_QUEUE)

        drained = await poll(drained_all, procs, deadline=time.monotonic() + drain_cap,
                             interval=0.1)
        if not drained:
            raise TimeoutError(f"the workers had not drained the soak {drain_cap:.0f} s "
                               f"after the last send")
        cpu: dict[str, float | None] = {
            "workers": processes_seconds(pids) - worker0,
            "server": (server.seconds() - server0) if server else None}
        readings.append(await _read(ctx, conn, db, "end (drained)", sender))
    finally:
        for task in (sending, progress):
            task.cancel()
        await asyncio.gather(sending, progress, return_exceptions=True)
        await progress_conn.close()
    return readings, cpu


def _steady(readings: list[Reading], settling: Settling) -> tuple[Reading, str, bool]:
    """The first reading of the steady state, how it was chosen, and whether any reading
    was steady at all (if not, the first one after ``settle``, or after the start)."""
    rule = (f"the first reading after {PASSES} whole autovacuum passes of each table that "
            f"began after {settling.settle:g} s into the sending (one retention and two "
            f"pruner intervals: history full, the pruner deleting as fast as jobs finish; "
            f"the pass under way then not counted); autovacuum_naptime is "
            f"{settling.naptime:g} s, so at most about {settling.expected():g} s in")
    during = readings[1:-1] or readings[1:]
    for reading in during:
        if settling.steady(reading):
            return reading, f"{rule}; here the {reading.label} reading, {reading.at:.0f} s in", True
    later = [r for r in during if r.at >= settling.settle]
    fallback = later[0] if later else during[0]
    return fallback, (f"NO reading was steady, the sending being too short for the rule "
                      f"({rule}); compared from the {fallback.label} reading instead"), False


#: What is compared between the steady start and the end: (key, label, value of a reading).
_COMPARED = (
    ("jobs_table", "jobs table", lambda r: r.jobs_bytes),
    ("jobs_indexes", "jobs indexes", lambda r: r.jobs_index_bytes),
    ("history_table", "history table", lambda r: r.history_bytes),
    ("history_indexes", "history indexes", lambda r: r.history_index_bytes),
    ("history_rows", "history rows", lambda r: r.history_rows),
    ("fetch", "fetch", lambda r: r.fetch_ms),
)


def _ratio(end: float, start: float) -> float | None:
    return end / start if start else None


def _report(ctx: Context, sender: Sender, readings: list[Reading],
            cpu: dict[str, float | None], settling: Settling) -> None:
    sizes = ctx.sizes
    n, rate = sender.total, sender.rate
    steady, why, reached = _steady(readings, settling)
    end = readings[-1]
    ratios = {key: _ratio(value(end), value(steady)) for key, _, value in _COMPARED}
    flat = {key: None if r is None else r <= FLAT for key, r in ratios.items()}
    target = Target(f"≤ {FLAT:g} (flat)", FLAT, "lower")
    label = f"soak of {n:,} at {rate:,.0f}/s, retention {sizes.soak_retention:g} s" + (
        "" if reached else " (no reading steady)")
    for key, name in (("jobs", "jobs table + indexes"), ("history", "history table + indexes")):
        total = _ratio(getattr(end, f"{key}_bytes") + getattr(end, f"{key}_index_bytes"),
                       getattr(steady, f"{key}_bytes") + getattr(steady, f"{key}_index_bytes"))
        if total is not None:
            ctx.report.metric(f"soak_{key}", f"{label}: {name}, end / steady start", "x",
                              "lower", digits=2, target=target).add(MS8, total)
    if ratios["fetch"] is not None:
        ctx.report.metric("soak_fetch", f"{label}: fetch of {sizes.fetch_batch}, end / "
                          "steady start", "x", "lower", digits=2, target=target).add(
                              MS8, ratios["fetch"])
    sent_rate = n / sender.elapsed() if sender.elapsed() else 0.0
    per_k = {who: None if seconds is None else seconds / n * 1e6
             for who, seconds in cpu.items()}
    ctx.report.sections["soak"] = _table(ctx, readings, steady, why, ratios, flat, sent_rate,
                                         per_k)
    ctx.report.data["soak"] = {
        "jobs": n, "rate": rate, "sent_rate": sent_rate, "workers": WORKERS,
        "retention_seconds": sizes.soak_retention,
        "prune_seconds": sizes.soak_prune_seconds, "steady_start": steady.label,
        "steady_start_why": why, "steady_reached": reached,
        "autovacuum_naptime": settling.naptime, "settle_seconds": settling.settle,
        "autovacuum_baseline": settling.baseline,
        "autovacuum_baseline_at": settling.baseline_at, "flat_bound": FLAT,
        "ratios": ratios, "flat": flat,
        "cpu_ms_per_1000": per_k, "readings": [asdict(r) for r in readings],
    }


def _table(ctx: Context, readings: list[Reading], steady: Reading, why: str,
           ratios: dict[str, float | None], flat: dict[str, bool | None], sent_rate: float,
           per_k: dict[str, float | None]) -> str:
    rows = [["reading", "at (s)", "sent", "backlog", "jobs (MB)", "jobs idx (MB)",
             "jobs dead", "jobs autovac", "history rows", "history (MB)", "history idx (MB)",
             "history dead", "history autovac", "fetch (ms)"]]
    for r in readings:
        rows.append([
            r.label + (" (steady start)" if r is steady else ""), f"{r.at:.0f}",
            f"{r.sent:,}", f"{r.backlog:,}", f"{r.jobs_bytes / 2**20:.1f}",
            f"{r.jobs_index_bytes / 2**20:.1f}", f"{r.jobs_dead:,}", str(r.jobs_autovacuums),
            f"{r.history_rows:,}", f"{r.history_bytes / 2**20:.1f}",
            f"{r.history_index_bytes / 2**20:.1f}", f"{r.history_dead:,}",
            str(r.history_autovacuums), f"{r.fetch_ms:.2f}"])
    verdicts = []
    for key, name, _ in _COMPARED:
        ratio = ratios[key]
        if ratio is None:
            verdicts.append(f"{name}: - (nothing at the steady start)")
        else:
            verdicts.append(f"{name} {ratio:.2f}x ({'flat' if flat[key] else 'GREW'})")
    end = readings[-1]

    def when(at: datetime | None) -> str:
        return "never" if at is None else at.strftime("%H:%M:%S")

    cpu = ", ".join(f"{who} {'-' if ms is None else f'{ms:,.0f} ms'}"
                    for who, ms in per_k.items())
    sizes = ctx.sizes
    return (render(rows, text_columns=1)
            + f"\n\nEnd / steady start (flat: ≤ {FLAT:g}x): " + "; ".join(verdicts) + "."
            + f"\nSteady start: {why}."
            + f"\nSent at {sent_rate:,.0f}/s (asked {sizes.soak_rate:,.0f}/s), drained by "
            f"{WORKERS} workers, retention {sizes.soak_retention:g} s, pruner every "
            f"{sizes.soak_prune_seconds:g} s; last autovacuum of jobs "
            f"{when(end.last_autovacuum_jobs)}, of history "
            f"{when(end.last_autovacuum_history)} (UTC)."
            + f"\nCPU per 1,000 jobs over the soak (fetch probes and pruning included): {cpu}."
            + f"\nFetch: median of {sizes.soak_fetch_reps} fetches of {sizes.fetch_batch} at "
            f"each reading, the workers draining meanwhile.")
