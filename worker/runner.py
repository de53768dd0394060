"""The worker: slots per queue, the fetch loop, and the graceful stop.

A slot is free again when its handler ends, while the job stays held until its result
is reported (see ``slots``): fetching overlaps with reporting, and the database, which
counts held jobs as active, keeps fleet-wide caps exact. Reported results make their
queue due again, since room may have opened under a cap that a fetch ran into.

    wakeup.wait() ──due queues──► fetch(free slots of each, one statement) ──► executor
        ▲                                                                         │
        │ ◄── slot freed (undrained queue) ◄── outcome ◄──────────────────────────┘
        │ ◄── results reported ◄── completer flush (batched) ◄── outcome
        └── notification | timer | connect | poll

Results waiting to be reported are bounded: past ``2 × MS8_COMPLETE_BATCH`` of them the
worker fetches nothing until the completer catches up.

Background loops: the completer (batched results), the heartbeat (one statement per
interval for every held job), the registry touch, the listener (wakeup and cancel
channels) and the session lock that makes this worker's death visible at once (both
absent in poll-only mode) and, if enabled, the maintenance campaign.

Database outages: every loop catches connection errors, reports them to the process's
outage watch (``shared.outage``: one warning per outage, one line when it is over) and
retries with backoff, cut short the moment the watch sees the database back; results
wait in the completer until they can be reported, and so do the jobs whose handlers met
the database gone, to be given back without spending an attempt (``executor``); a fetch
that failed on a lost connection may have claimed jobs whose reply never came, so the next fetch
first hands back whatever this worker holds without knowing (``release_orphans``); the
listener's reconnect makes every queue due, so missed notifications cost nothing.

Stopping (SIGTERM/SIGINT): stop fetching and step down as leader, let running jobs
finish for the grace period (a second signal cuts it short), cancel the rest and hand
them back without counting an attempt, report every result, deregister; all the
database work after the grace period shares one budget, ``MS8_WORKER_DB_TIMEOUT_SECONDS``
(see ``shutdown``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

from shared import queue
from shared.backoff import Backoff
from shared.db import Database, is_connection_error, retry_connection
from shared.listener import Listener
from shared.logging import get_logger
from shared.queue import Job
from worker.clients import Clients
from worker.completer import Completer
from worker.endings import Endings
from worker.executor import (
    CANCELLED,
    COMPLETED,
    FAILED,
    INTERRUPTED,
    LOST,
    RELEASED,
    TIMEOUT,
    Executor,
    Outcome,
)
from worker.handlers import Handler, HandlerError, concurrencies, select
from worker.heartbeat import Heartbeat
from worker.liveness import SessionLock
from worker.maintenance.batches import BatchFinisher
from worker.maintenance.leader import Leadership, PassLeadership
from worker.maintenance.liveness import Liveness
from worker.maintenance.pruner import Pruner
from worker.maintenance.reaper import Reaper
from worker.maintenance.rescuer import Rescuer
from worker.maintenance.sampler import Sampler
from worker.maintenance.service import MaintenanceService
from worker.metrics import WorkerMetrics
from worker.registry import Registration
from worker.settings import WorkerSettings
from worker.shutdown import drain_handlers, hand_over, left
from worker.slots import Slots
from worker.wakeup import Wakeup

log = get_logger(__name__)
Loop = Callable[[], Coroutine[Any, Any, None]]


class Runner:
    def __init__(
        self, db: Database, settings: WorkerSettings, handlers: Mapping[str, Handler], *,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.worker_id = settings.worker_id
        self.handlers = self.check(settings, handlers)
        self.concurrency = settings.concurrency_of(handlers, concurrencies())
        self.metrics = metrics or WorkerMetrics()
        self.slots = Slots(self.concurrency, self.metrics)
        self._backlog_limit = 2 * settings.complete_batch
        self._released: list[Job] = []
        self._orphans_possible = False
        self.clients = Clients()
        self._beat: asyncio.Task[None] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.clean_stop = False

        s = settings
        self.wakeup = Wakeup(self.concurrency, poll_seconds=s.poll_seconds,
                             trust_notifications=not s.poll_only)
        self.executor = Executor(db, self.worker_id, self.handlers, self.clients, self._on_done,
                                 s.max_run_seconds)
        self.endings = Endings(self.metrics, self.worker_id, s.job_log_level)
        self.completer = Completer(
            db, self.worker_id, window=s.complete_window_seconds, max_batch=s.complete_batch,
            db_timeout=s.db_timeout_seconds, on_flushed=self._on_flushed,
            on_retry=self._on_retry, on_batch=self.metrics.completion_batch.observe)
        self.heartbeat = Heartbeat(
            db, self.worker_id, interval=s.heartbeat_seconds, db_timeout=s.db_timeout_seconds,
            held=self.slots.held_ids, on_lost=self._on_lost)
        # No session connection in poll-only mode: the stall timeout is the only net there.
        self.session_lock = None if s.poll_only else SessionLock(
            db, self.worker_id, check_seconds=s.listen_check_seconds, on_held=self._lock_held)
        self.registration = Registration(
            db, self.worker_id, self.concurrency, interval=s.registry_seconds,
            db_timeout=s.db_timeout_seconds, session_lock=self.session_lock is not None)
        self.listener = None if s.poll_only else Listener(
            db, ["wakeup", "cancel"], self._on_notify, on_connect=self._on_listening,
            health_interval=s.listen_check_seconds,
            health_timeout=min(5.0, s.db_timeout_seconds))
        self.maintenance = MaintenanceService([
            # Resting while idle needs the wake-up notifications: none in poll-only mode.
            Liveness(db, s.liveness_seconds,
                     rest_max=0.0 if s.poll_only else s.liveness_rest_seconds),
            Rescuer(db, s.stall_seconds, s.timeout_grace_seconds, s.rescue_seconds),
            Pruner(db, s.prune_seconds, s.prune_chunk),
            Reaper(db, s.forget_worker_seconds, s.forget_worker_seconds / 2),
            BatchFinisher(db, s.batch_check_seconds),
            Sampler(db, s.sample_seconds, 3 * s.registry_seconds),
        ], self.metrics)
        self.leadership: Leadership | PassLeadership | None = None
        if s.maintenance and s.poll_only:  # no session connection to hold a lock on
            self.leadership = PassLeadership(
                db, self.worker_id, service=self.maintenance, on_change=self._leading)
        elif s.maintenance:
            self.leadership = Leadership(
                db, self.worker_id, lead=self.maintenance.run_on,
                wait_seconds=s.leader_wait_seconds, on_change=self._leading)

    @staticmethod
    def check(settings: WorkerSettings, handlers: Mapping[str, Handler]) -> dict[str, Handler]:
        """The handlers of the queues to run; raises ``HandlerError`` naming what is wrong."""
        queues = settings.concurrency_of(handlers, concurrencies())
        if not queues:
            raise HandlerError("no queue to run: no handler is registered")
        return select(handlers, queues)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Take the session lock, register, start listening and the loops; returns once
        the worker is fetching."""
        if self.session_lock is not None:
            self.session_lock.start()  # before registering: maintenance looks for it then
        await retry_connection(self.registration.register, what="worker registry")
        if self.listener is not None:
            await self.listener.start()
        for name, loop in (("fetch", self._fetch_loop), ("completer", self.completer.run),
                           ("heartbeat", self.heartbeat.run), ("registry", self.registration.run)):
            self._tasks[name] = self._spawn(name, loop)
        if self.leadership is not None:
            self.leadership.start()
        self.started.set()
        log.info("worker started", worker_id=self.worker_id, queues=self.concurrency,
                 poll_only=self.settings.poll_only, maintenance=self.settings.maintenance)

    def hurry(self) -> None:
        """Cut the grace period short (a second signal)."""
        self._hurry.set()

    async def stop(self, grace: float | None = None) -> bool:
        """Stop gracefully; True when every job was reported or handed back."""
        if self._stopping.is_set():
            self.hurry()
            await self.stopped.wait()
            return self.clean_stop
        self._stopping.set()
        grace = self.settings.grace_seconds if grace is None else grace
        log.info("worker stopping", running=len(self.executor), grace_seconds=grace)
        self.wakeup.stop()
        if "fetch" in self._tasks:
            await _finish(self._tasks.pop("fetch"))
        if self.leadership is not None:
            await self.leadership.stop()
        await drain_handlers(self.executor, grace, self._hurry)
        # From here on, the database gets one budget for everything that is left.
        deadline = asyncio.get_running_loop().time() + self.settings.db_timeout_seconds
        if "completer" in self._tasks:  # flush from here on, not from its loop
            task = self._tasks.pop("completer")
            task.cancel()
            await _finish(task)
        # Handlers that ignored their cancellation still hold their job: hand it back too.
        unfinished = {job.id for job in self._released} | self.executor.running_ids
        clean = await hand_over(self.db, self.worker_id, self.completer, unfinished, deadline)
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            await _finish(task)
        if self.listener is not None:
            await self.listener.stop()
        await self.registration.deregister(left(deadline))  # else maintenance forgets it
        if self.session_lock is not None:
            await self.session_lock.stop()
        await self.clients.close()
        self.clean_stop = clean
        log.info("worker stopped", clean=self.clean_stop)
        self.stopped.set()
        return self.clean_stop

    def _spawn(self, name: str, loop: Loop) -> asyncio.Task[None]:
        return asyncio.create_task(self._supervise(name, loop), name=f"worker-{name}")

    async def _supervise(self, name: str, loop: Loop) -> None:
        """Keep a loop alive: a bug in one iteration must not leave the worker half-dead."""
        backoff = Backoff(1.0, 30.0)
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker loop crashed; restarting it", loop=name)
                await backoff.sleep()

    # ------------------------------------------------------------------ fetching

    def free(self, queue_name: str) -> int:
        return self.slots.free(queue_name)

    async def _fetch_loop(self) -> None:
        backoff = Backoff(0.1, 10.0)
        while not self._stopping.is_set():
            due = await self.wakeup.wait()
            if self._stopping.is_set():
                return
            if len(self.completer) >= self._backlog_limit:
                continue  # the completer's next flush makes these queues due again
            wanted = {q: self.free(q) for q in sorted(due) if self.free(q) > 0}
            if not wanted:
                continue
            try:
                await self._fetch(wanted)
                backoff.reset()
            except Exception as error:
                self.metrics.db_errors.labels("fetch").inc()
                if is_connection_error(error):
                    self._orphans_possible = True
                    self.db.outage.report("fetch", error)
                else:
                    log.exception("fetch failed")
                for name in wanted:
                    self.wakeup.notified(name, None)
                await self.db.outage.pause(backoff.next(), unless=self._stopping)

    async def _fetch(self, wanted: dict[str, int]) -> None:
        timeout = self.settings.db_timeout_seconds
        if self._orphans_possible:
            async with asyncio.timeout(timeout):
                orphans = await queue.release_orphans(
                    self.db, self.worker_id, self.slots.held_ids())
            self._orphans_possible = False
            if orphans:
                log.info("handed back jobs claimed by a fetch whose reply was lost",
                         jobs=orphans)
        async with asyncio.timeout(timeout):
            jobs = await queue.fetch(self.db, wanted, self.worker_id)
        self.metrics.fetches.inc()
        self.metrics.fetch_batch.observe(len(jobs))
        got = Counter(job.queue for job in jobs)
        self.wakeup.fetched(wanted, got)
        if jobs:
            # Results still pending for these ids belong to attempts that are over.
            self.endings.forget(self.completer.forget(job.id for job in jobs))
            for job in jobs:
                self.slots.take(job)
                self.executor.start(job)
        short = [name for name in wanted if got[name] < wanted[name]]
        ask = self.wakeup.unknown_next_start(short)
        if ask:
            try:
                async with asyncio.timeout(timeout):
                    start_after = await queue.next_start_after(self.db, ask)
            except Exception as error:
                if not is_connection_error(error):
                    raise
                self.db.outage.report("next start", error)
                return
            self.wakeup.arm(ask, start_after)

    # ------------------------------------------------------------------ outcomes

    def _on_done(self, job: Job, outcome: Outcome) -> None:
        self.slots.ended(job)
        self.wakeup.slot_freed(job.queue)
        if outcome.kind == COMPLETED:
            self.endings.reporting(job, outcome)
            self.completer.complete(job, outcome.output)
        elif outcome.kind in (FAILED, TIMEOUT):
            assert outcome.failure is not None
            self.endings.reporting(job, outcome)
            self.completer.fail(job, outcome.failure)
        elif outcome.kind == INTERRUPTED:
            assert outcome.failure is not None
            self.endings.reporting(job, outcome)
            self.completer.give_back(job, outcome.failure)
        elif outcome.kind in (CANCELLED, LOST):
            self.endings.ended(job, outcome)
            self.slots.let_go(job)
        elif outcome.kind == RELEASED:
            self.endings.ended(job, outcome)
            self._released.append(job)
        if not len(self.executor):
            self.completer.nudge()

    def _on_retry(self, job: Job, at: datetime) -> None:
        self.endings.retrying(job, at)
        self.wakeup.retry_at(job.queue, at)

    def _on_flushed(self, saved: list[tuple[Job, str]]) -> None:
        """Results are stored: count, time and log each run by where it ended up, and free
        their jobs."""
        jobs = []
        for job, state in saved:
            self.endings.saved(job, state)
            self.slots.let_go(job)
            jobs.append(job)
        for queue_name in {job.queue for job in jobs}:
            self.wakeup.reported(queue_name)

    def _on_lost(self, job_ids: set[int]) -> None:
        cancelled = self.executor.cancel(job_ids, LOST)
        if cancelled:
            log.warning("jobs no longer held by this worker; handlers cancelled",
                        jobs=sorted(cancelled))

    # ------------------------------------------------------------------ notifications

    def _on_notify(self, channel: str, payload: dict[str, Any]) -> None:
        if channel == "wakeup":
            self.maintenance.nudge()  # a job may start: the liveness check stops resting
            name = payload.get("queue")
            start_after = payload.get("start_after")
            if isinstance(name, str) and not self._stopping.is_set():
                self.wakeup.notified(
                    name, float(start_after) if isinstance(start_after, int | float) else None)
        elif channel == "cancel":
            ids = [i for i in payload.get("ids") or [] if isinstance(i, int)]
            cancelled = self.executor.cancel(ids, CANCELLED)
            if cancelled:
                log.info("jobs cancelled; handlers stopped", jobs=sorted(cancelled))

    async def _on_listening(self) -> None:
        self.wakeup.connected()
        self.maintenance.nudge()  # notifications may have been missed meanwhile
        if self.started.is_set():
            log.info("listening again; fetching to catch up")

    def _lock_held(self) -> None:
        """The session lock is held again after its connection was lost: maintenance may
        have taken jobs back meanwhile, so find out now rather than at the next beat."""
        if self.started.is_set() and not self._stopping.is_set():
            self._beat = asyncio.create_task(self.heartbeat.beat(), name="heartbeat-now")

    def _leading(self, leading: bool) -> None:
        self.metrics.leader.set(1 if leading else 0)


async def _finish(task: asyncio.Task[None]) -> None:
    """Wait for a task that was cancelled or is ending, swallowing its cancellation."""
    with contextlib.suppress(asyncio.CancelledError):
        await task
