"""Does fetch stay flat with a long history? (scenario 6b), and the plans of the hot path.

Two databases side by side: one with an empty history, one whose history holds
``history_rows`` finished jobs of the very queue being fetched (inserted in bulk with
SQL here, the way months of completed jobs would sit there). Both get the same backlog
of waiting jobs. Then, alternating between the two so that machine noise hits both
alike, the core's ``fetch`` claims ``fetch_batch`` jobs and ``complete_many`` completes
them; each call is timed on the client, and the medians are compared.

With ``--explain``, the same calls run once more on the big database with
``auto_explain`` on in the session (nested statements included, sent back to the
client as notices), which gives ``EXPLAIN (ANALYZE, BUFFERS)`` of the statement inside
``fetch_jobs()`` as it really runs, and of the complete statement.
"""

from __future__ import annotations

import statistics
import time

import asyncpg

from bench.context import Context
from bench.ms8 import SCHEMA, Ms8System, opened
from bench.results import MS8, Target
from shared.db import Database
from shared.queue import JobSpec, complete_many, fetch, send_many

QUEUE = "bench-fetch"
WORKER = "bench-fetcher"
_CHUNK = 250_000


async def fill_history(url: str, rows: int) -> None:
    """Insert ``rows`` completed jobs of QUEUE into history, in chunks, then VACUUM ANALYZE."""
    conn = await asyncpg.connect(url)
    try:
        for first in range(1, rows + 1, _CHUNK):
            last = min(first + _CHUNK - 1, rows)
            await conn.execute(
                f"""
                INSERT INTO "{SCHEMA}".history (
                    id, queue, state, priority, data, start_after, attempt, retry_limit,
                    retry_delay_seconds, retry_backoff, retry_delay_max_seconds,
                    run_timeout_seconds, progress, worker_id, created_at, started_at,
                    heartbeat_at, completed_at)
                SELECT i, $1, 'completed', 0, jsonb_build_object('n', i),
                       now() - make_interval(secs => ($3 - i) * 0.5), 1, 2, 60, true, 3600,
                       900, 100, 'bench-history',
                       now() - make_interval(secs => ($3 - i) * 0.5),
                       now() - make_interval(secs => ($3 - i) * 0.5),
                       now() - make_interval(secs => ($3 - i) * 0.5),
                       now() - make_interval(secs => ($3 - i) * 0.5 - 0.01)
                FROM generate_series($2::bigint, $3::bigint) AS i
                """, QUEUE, first, last)
        # New jobs must not take ids that history already holds.
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{SCHEMA}\".jobs', 'id'), $1)", rows)
        await conn.execute(f'VACUUM ANALYZE "{SCHEMA}".history')
    finally:
        await conn.close()


async def _backlog(db: Database, url: str, jobs: int) -> None:
    await send_many(db, [JobSpec.of(QUEUE, {"n": i}) for i in range(jobs)])
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'ANALYZE "{SCHEMA}".jobs')
    finally:
        await conn.close()


async def _fetch_and_complete(db: Database, batch: int) -> tuple[float, float]:
    started = time.perf_counter()
    jobs = await fetch(db, {QUEUE: batch}, WORKER)
    fetched = time.perf_counter()
    await complete_many(db, [(job.id, None) for job in jobs], worker_id=WORKER)
    done = time.perf_counter()
    if len(jobs) != batch:
        raise RuntimeError(f"fetch returned {len(jobs)} jobs, expected {batch}")
    return (fetched - started) * 1000, (done - fetched) * 1000


async def run(ctx: Context, *, measure: bool = True) -> None:
    sizes = ctx.sizes
    rows = sizes.history_rows
    system = Ms8System()
    jobs = (sizes.fetch_reps + 2) * sizes.fetch_batch * (2 if ctx.explain else 1)
    async with ctx.server.database("fetch_empty") as empty_url, \
            ctx.server.database("fetch_history") as full_url:
        for url in (empty_url, full_url):
            await system.install(url)
        ctx.say(f"inserting {rows:,} finished jobs into history")
        started = time.monotonic()
        await fill_history(full_url, rows)
        ctx.say(f"history filled in {time.monotonic() - started:.1f} s")
        async with opened(empty_url) as empty, opened(full_url) as full:
            await _backlog(empty, empty_url, jobs)
            await _backlog(full, full_url, jobs)
            if measure:
                await _measure(ctx, empty, full)
            if ctx.explain:
                ctx.report.sections["explain"] = await explain(full, sizes.fetch_batch)


async def _measure(ctx: Context, empty: Database, full: Database) -> None:
    sizes = ctx.sizes
    label = f"{sizes.history_rows:,}"
    times: dict[str, list[tuple[float, float]]] = {"empty": [], "full": []}
    for db in (empty, full):  # warm up: connections, prepared statements, caches
        await _fetch_and_complete(db, sizes.fetch_batch)
    for i in range(sizes.fetch_reps):
        order = (("empty", empty), ("full", full)) if i % 2 else (("full", full), ("empty", empty))
        for name, db in order:
            times[name].append(await _fetch_and_complete(db, sizes.fetch_batch))
    fetch_ms = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    complete_ms = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    report = ctx.report
    batch = sizes.fetch_batch
    report.metric("fetch_empty", f"fetch of {batch}, empty history", "ms", "lower",
                  digits=3).add(MS8, fetch_ms["empty"])
    report.metric("fetch_full", f"fetch of {batch}, {label} jobs in history", "ms", "lower",
                  digits=3).add(MS8, fetch_ms["full"])
    report.metric(
        "fetch_ratio", f"fetch, {label} history / empty", "x", "lower", digits=3,
        target=Target("≤ 1.10", 1.10, "lower"),
    ).add(MS8, fetch_ms["full"] / fetch_ms["empty"])
    report.metric("complete_empty", f"complete of {batch}, empty history", "ms", "lower",
                  digits=3).add(MS8, complete_ms["empty"])
    report.metric("complete_full", f"complete of {batch}, {label} jobs in history", "ms",
                  "lower", digits=3).add(MS8, complete_ms["full"])
    ctx.say(f"fetch {fetch_ms['empty']:.3f} ms empty, {fetch_ms['full']:.3f} ms with "
            f"{label} history; complete {complete_ms['empty']:.3f} / {complete_ms['full']:.3f} ms")


async def explain(db: Database, batch: int) -> str:
    """The plans of one fetch and one complete, as they ran, with buffers and timing."""
    notices: list[str] = []
    async with db.pool.acquire() as conn:
        def collect(_conn: object, message: asyncpg.PostgresLogMessage) -> None:
            notices.append(str(message.message))

        conn.add_log_listener(collect)
        for setting in ("LOAD 'auto_explain'",
                        "SET auto_explain.log_min_duration = 0",
                        "SET auto_explain.log_analyze = on",
                        "SET auto_explain.log_buffers = on",
                        "SET auto_explain.log_timing = on",
                        "SET auto_explain.log_nested_statements = on",
                        "SET auto_explain.log_level = notice"):
            await conn.execute(setting)
        try:
            jobs = await fetch(db, {QUEUE: batch}, WORKER, conn=conn)
            fetch_plans = list(notices)
            notices.clear()
            await complete_many(db, [(j.id, None) for j in jobs], worker_id=WORKER, conn=conn)
            complete_plans = list(notices)
        finally:
            await conn.execute("RESET ALL")
            conn.remove_log_listener(collect)
    return ("-- fetch of " + str(batch) + " (the statements inside fetch_jobs(), then the call)\n"
            + "\n\n".join(fetch_plans)
            + "\n\n-- complete of " + str(len(jobs)) + "\n" + "\n\n".join(complete_plans))
