"""The MS8 work: ``collect-analytics`` for one user-role, the nightly ``daily-batch``
fan-out and its ``daily-batch-done`` summary, and the sources' metrics.

One ``Collector`` per worker process (built from the environment when this module is
imported, so a bad source setting stops the worker at start): its breakers and
per-source limits are shared by every job the process runs, whatever the queue. A job
whose collection saw a breaker open records the opening (``analytics.breakers``) before
it ends; a failed write is logged and the opening kept for the next job, never a
reason to fail this one.

``collect-analytics`` takes ``{"user_role_id": N, "day": "YYYY-MM-DD"}``:

- some sources answered → the day's snapshot is upserted (``partial`` naming the others)
  and the job completes with ``{"status": "complete"|"partial", "missing": [...]}``;
- no source answered → it raises, and the queue's retry policy applies (no snapshot is
  written, so a good snapshot of the day from an earlier run is kept);
- the database is gone when the snapshot is written → the job goes back to the queue
  without spending an attempt, as from a crashed worker (``worker.executor``);
- the user-role does not exist → it completes with status ``skipped``.

Progress is reported as each source ends, for a job that someone may watch: one sent
on its own, or a batch job once it has run for ten seconds, waiting on a slow source (a
night's 30,000 jobs are watched through their batch; four more writes a job would double
the database work of the night). On a busy machine hundreds of healthy batch jobs pass
one second at once: with a one-second threshold the benchmark's night wrote 3,976
progress updates, each a notifying commit, 95 s of statement time in PostgreSQL.

``daily-batch`` is for one night: ``data["night"]`` ("YYYY-MM-DD", to run a given night
again by hand), else the night of the firing's ``data["fire_time"]``, else the night of
the job's creation. It sends one collect-analytics job per active user-role under one
batch (``analytics.fanout``): run twice, or retried after a crash, it continues where it
stopped or does nothing. ``daily-batch-done`` is the batch's completion job: it writes
the night's summary.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector as MetricsCollector

from analytics import breakers, fanout, runs, snapshots
from analytics.breaker import STATE_VALUES
from analytics.collect import Collector, OnSource, SourceResult
from analytics.models import PARTIAL
from analytics.settings import AnalyticsSettings
from shared.db import Database
from worker.context import JobContext, PermanentError
from worker.handlers import add_collector, handler

PROGRESS_AFTER_SECONDS = 10.0
# A run is ~50 ms of waiting on the sources and little CPU, so a worker runs many at
# once; the queue's fleet limit (analytics.fanout) bounds the fleet as a whole.
COLLECT_CONCURRENCY = 100


class AllSourcesFailed(RuntimeError):
    """No source answered: the attempt fails, and retries while attempts are left."""


_collector = Collector(AnalyticsSettings.from_env())
_writer: snapshots.SnapshotWriter | None = None


def collector() -> Collector:
    """The process's collector (its breakers are per process, shared by all its jobs)."""
    return _collector


def snapshot_writer(db: Database) -> snapshots.SnapshotWriter:
    """The process's snapshot writer for ``db`` (its jobs' snapshots share commits)."""
    global _writer
    if _writer is None or _writer.db is not db:
        _writer = snapshots.SnapshotWriter(db)
    return _writer


def configure(settings: AnalyticsSettings) -> Collector:
    """Start over with other settings and fresh breakers (tests running workers in-process)."""
    global _collector
    _collector = Collector(settings)
    return _collector


def collect_input(data: Any) -> tuple[int, date]:
    """(user_role_id, day) of a collect-analytics job; PermanentError names a bad field."""
    if not isinstance(data, dict):
        raise PermanentError("data must be an object with user_role_id and day")
    user_role_id = data.get("user_role_id")
    if isinstance(user_role_id, bool) or not isinstance(user_role_id, int) or user_role_id < 1:
        raise PermanentError(f"data.user_role_id must be a positive integer, got {user_role_id!r}")
    try:
        day = date.fromisoformat(data["day"])
    except (KeyError, TypeError, ValueError):
        raise PermanentError(
            f"data.day must be a date written YYYY-MM-DD, got {data.get('day')!r}") from None
    return user_role_id, day


@handler(fanout.COLLECT_QUEUE, concurrency=COLLECT_CONCURRENCY)
async def collect_analytics(ctx: JobContext) -> dict[str, Any]:
    user_role_id, day = collect_input(ctx.data)
    started = time.monotonic()
    alone = ctx.job.batch_id is None

    async def on_source(result: SourceResult, done: int, total: int) -> None:
        if alone or time.monotonic() - started >= PROGRESS_AFTER_SECONDS:
            what = "answered" if result.ok else f"missing ({result.reason})"
            await ctx.progress(done * 100 // total, f"{result.source}: {what}")

    return await collect_snapshot(ctx, user_role_id, day, on_source)


async def collect_snapshot(
    ctx: JobContext, user_role_id: int, day: date, on_source: OnSource | None = None,
) -> dict[str, Any]:
    """Collect the user-role (at the job's priority on the sources' limits), upsert the
    day's snapshot, and return the job's output; raises when every source failed."""
    collection = await collector().collect(ctx.aiohttp, user_role_id, on_source,
                                           priority=ctx.job.priority)
    await record_openings(ctx)
    missing = collection.missing
    if collection.all_failed:
        raise AllSourcesFailed("every source failed: " + ", ".join(
            f"{m.source} ({m.reason})" for m in missing))
    written = await snapshot_writer(ctx.db).write(snapshots.SnapshotRow(
        user_role_id, day, collection.data, missing, collection.duration_ms,
        job_id=ctx.job.id, batch_id=ctx.job.batch_id))
    if not written:
        return {"status": "skipped", "reason": f"user-role {user_role_id} does not exist"}
    return {"status": PARTIAL if missing else "complete", "day": day.isoformat(),
            "missing": [m.as_dict() for m in missing], "duration_ms": collection.duration_ms}


async def record_openings(ctx: JobContext) -> None:
    """Write the breaker openings this process saw and has not recorded yet."""
    current = collector()
    openings = current.take_openings()
    if not openings:
        return
    try:
        await breakers.record(ctx.db, ctx.worker_id, openings)
    except Exception as error:
        current.give_back_openings(openings)
        ctx.log.warning("breaker openings not recorded", count=len(openings),
                        error=str(error))
        return
    for opening in openings:
        ctx.log.info("source breaker opened", source=opening.source,
                     after_probe=opening.after_probe)


def night_of_job(data: Any, created_at: datetime) -> tuple[date, datetime | None]:
    """(night, fire time) of a daily-batch job; PermanentError names a bad field."""
    data = data if isinstance(data, dict) else {}
    fire_time = None
    if data.get("fire_time") is not None:
        try:
            fire_time = datetime.fromisoformat(str(data["fire_time"]))
        except ValueError:
            raise PermanentError(
                f"data.fire_time must be an RFC 3339 time, got {data['fire_time']!r}") from None
        if fire_time.tzinfo is None:
            raise PermanentError(f"data.fire_time needs a UTC offset: {data['fire_time']!r}")
    if data.get("night") is not None:
        try:
            return date.fromisoformat(str(data["night"])), fire_time
        except ValueError:
            raise PermanentError(
                f"data.night must be a date written YYYY-MM-DD, got {data['night']!r}") from None
    return fanout.night_of(fire_time or created_at), fire_time


@handler(fanout.DAILY_QUEUE)
async def daily_batch(ctx: JobContext) -> dict[str, Any]:
    night, fire_time = night_of_job(ctx.data, ctx.job.created_at)

    async def on_progress(sent: int, total: int) -> None:
        await ctx.progress(min(99, sent * 100 // max(total, 1)),
                           f"sent {sent:,} of {total:,} user-roles")

    result = await fanout.fan_out(
        ctx.db, night, chunk=collector().settings.fanout_chunk, fire_time=fire_time,
        job_id=ctx.job.id, on_progress=on_progress)
    ctx.log.info("nightly fan-out", night=night.isoformat(), batch_id=result.batch_id,
                 sent_now=result.sent_now, sent=result.sent, already_done=result.already_done)
    return {"night": night.isoformat(), "batch_id": result.batch_id, "sent": result.sent,
            "sent_now": result.sent_now,
            "status": "already-sent" if result.already_done else "sent"}


@handler(fanout.DONE_QUEUE)
async def daily_batch_done(ctx: JobContext) -> dict[str, Any]:
    data = ctx.data if isinstance(ctx.data, dict) else {}
    try:
        night, batch_id = date.fromisoformat(data["night"]), int(data["batch_id"])
    except (KeyError, TypeError, ValueError):
        raise PermanentError("data must carry the night (YYYY-MM-DD) and batch_id of the "
                             "batch it completes") from None
    run = await runs.write_summary(ctx.db, night, batch_id)
    await breakers.prune(ctx.db)
    summary = {"night": night.isoformat(), "batch_id": batch_id, "total": run.total,
               "complete": run.complete, "partial": run.partial, "failed": run.failed,
               "cancelled": run.cancelled, "duration_seconds": run.duration_seconds,
               "source_failures": run.source_failures}
    ctx.log.info("nightly run finished", **summary)
    return summary


class SourceMetrics(MetricsCollector):
    """The sources as this worker sees them, read when scraped (never on the job path)."""

    def collect(self) -> Iterator[Any]:
        current = collector()
        state = GaugeMetricFamily(
            "ms8_source_breaker_state", "Circuit breaker of each source in this worker: "
            "0 closed, 1 half-open (probing), 2 open", labels=["source"])
        for name, breaker in current.breakers.items():
            state.add_metric([name], STATE_VALUES[breaker.state])
        yield state
        failures = CounterMetricFamily(
            "ms8_source_failures", "Requests to a source that failed, by kind (timeout, "
            "connection, http-5xx, http-429, invalid, too-large), and calls "
            "refused by its open breaker (circuit-open)", labels=["source", "kind"])
        for (name, kind), count in sorted(current.failures.items()):
            failures.add_metric([name, kind], count)
        yield failures


add_collector(SourceMetrics())
