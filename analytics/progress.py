"""A nightly run as the person who opens the dashboard in the morning asks about it: how far
it got (done, partial, failed against the total), how fast, when it will end, which
sources failed most and when their breakers opened.

While the run goes on, its numbers are counted live: the batch's jobs by state (the
queue core's batch totals), the snapshots its jobs wrote (partial ones, and per source
how many miss it), and the speed from the collect-analytics queue's per-minute rollups
of the last five minutes (``RATE_MINUTES``), which gives the expected end. Once the
batch has ended, the night's summary is the answer, and the rate is the night's average.
The time line is the collect-analytics queue's rollups from the run's start to its end
(or now), and the breaker openings recorded in that time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from analytics import breakers, runs, snapshots, user_roles
from analytics.fanout import COLLECT_QUEUE
from analytics.models import BreakerOpening, NightlyRun
from shared import queue
from shared.db import Database

RATE_MINUTES = 5


@dataclass(frozen=True, slots=True)
class NightProgress:
    run: NightlyRun
    # The user-roles of the night: the jobs sent once fanned out, the active user-roles
    # before (the fan-out sends one job for each).
    total: int
    complete: int
    partial: int
    failed: int
    cancelled: int
    waiting: int
    active: int
    rate_per_minute: float | None   # jobs ended per minute (recent while running)
    expected_end: datetime | None   # while running, at the recent rate
    until: datetime                 # the end of the time line: finished_at, else now
    window: queue.Window
    minutes: list[queue.Rollup]      # collect-analytics jobs ended, per bucket of window
    openings: list[BreakerOpening]
    source_failures: dict[str, int]  # {source: snapshots missing it}, most first

    @property
    def done(self) -> int:
        return self.complete + self.partial + self.failed + self.cancelled

    @property
    def duration_seconds(self) -> float:
        """From the start of the fan-out to the batch's end, or to now while it runs."""
        if self.run.duration_seconds is not None:
            return self.run.duration_seconds
        return max((self.until - self.run.started_at).total_seconds(), 0.0)

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0


def _most_first(failures: dict[str, int]) -> dict[str, int]:
    return dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])))


async def night_progress(db: Database, night: date, *, now: datetime | None = None
                         ) -> NightProgress:
    """The progress of night ``night`` (``NotFound`` when it never ran)."""
    run = await runs.get(db, night)
    now = now or datetime.now(UTC)
    until = run.finished_at or max(now, run.started_at + timedelta(seconds=1))
    # A time line reaches back a month at most (a run left unfinished for longer).
    since = max(run.started_at, until - timedelta(hours=queue.Window.MAX_HOURS))
    window = queue.Window.covering(since, until)
    minutes = await queue.rollups(db, window, queue=COLLECT_QUEUE)
    openings = await breakers.openings(db, run.started_at, window.end)
    if run.finished_at is not None:
        total = run.total or 0
        seconds = run.duration_seconds or 0.0
        return NightProgress(
            run, total, run.complete or 0, run.partial or 0, run.failed or 0,
            run.cancelled or 0, 0, 0, total * 60.0 / seconds if seconds > 0 else None, None,
            until, window, minutes, openings, _most_first(run.source_failures or {}))

    totals, partial, failures = queue.BatchTotals(), 0, {}
    if run.batch_id is not None:
        totals = (await queue.get_batch(db, run.batch_id)).totals
        written = await snapshots.of_batch(db, run.batch_id)
        partial, failures = min(written.partial, totals.completed), written.source_failures
    total = run.sent if run.state != "fanning-out" else max(
        run.sent, (await user_roles.count(db)).active)
    rate = await _recent_rate(db, run, now)
    done = totals.completed + totals.failed + totals.cancelled
    expected = (now + timedelta(minutes=(total - done) / rate)
                if rate and total > done else None)
    return NightProgress(
        run, total, totals.completed - partial, partial, totals.failed, totals.cancelled,
        totals.waiting, totals.active, rate, expected, until, window, minutes, openings,
        _most_first(failures))


async def _recent_rate(db: Database, run: NightlyRun, now: datetime) -> float | None:
    """collect-analytics jobs ended per minute over the last few minutes of the run."""
    since = min(max(run.started_at, now - timedelta(minutes=RATE_MINUTES)), now)
    recent = queue.Window.covering(since, now + timedelta(seconds=1))
    ended = sum(r.count for r in await queue.rollups(db, recent, queue=COLLECT_QUEUE))
    elapsed = (now - max(recent.start, run.started_at)).total_seconds()
    return ended * 60.0 / elapsed if elapsed > 0 else None
