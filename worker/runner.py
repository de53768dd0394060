"""The worker: slots per queue, the services that move a job, and the graceful stop.

A slot is free again when its handler ends, while the job stays held until its result
is reported (see ``slots``): fetching overlaps with reporting, and the database, which
counts held jobs as active, keeps fleet-wide caps exact. Reported results make their
queue due again, since room may have opened under a cap that a fetch ran into.

    listener ──_notification_to_wakeup──► wakeup ──due queues──► fetcher ──► executor
        │ _connect_to_wakeup (every queue due)  ▲                                │
        │                                       │ slot freed   _outcome_to_completer
        │                                       │ ◄──────────────────────────────┤
        │                       _saved_to_slots │                                ▼
        │               (queues due, jobs freed)└─────────────────────────── completer
    heartbeat ──_lost_to_executor──► executor (handlers of jobs no longer held cancelled)
    session lock ──_lock_to_heartbeat──► heartbeat (beat now)

Each arrow named here is a method of ``Runner``: that is all the wiring there is.

Background services (``shared.service``: one task each, started and stopped alike, a
connection error reported to the outage watch and retried with backoff, a bug logged
once and retried): the fetcher (``fetcher``), the completer (batched results), the
heartbeat (one statement per interval for every held job), the registry touch, the
listener (wakeup and cancel channels) and the session lock that makes this worker's
death visible at once (both absent in poll-only mode) and, if enabled, the maintenance
campaign (``maintenance.leader``).

Database outages: every service reports connection errors to the process's outage watch
(``shared.outage``: one warning per outage, one line when it is over) and retries with
backoff, cut short the moment the watch sees the database back; results wait in the
completer until they can be reported, and so do the jobs whose handlers met the
database gone, to be given back without spending an attempt (``executor``); a fetch
that failed on a lost connection may have claimed jobs whose reply never came, so the
next fetch first hands back whatever this worker holds without knowing
(``release_orphans``); the listener's reconnect makes every queue due, so missed
notifications cost nothing.

Stopping (SIGTERM/SIGINT): stop fetching and step down as leader, let running jobs
finish for the grace period (a second signal cuts it short), cancel the rest and hand
them back without counting an attempt, report every result, then stop the heartbeat,
the registry touch and the listener, deregister, and release the session lock; all the
database work after the grace period shares one budget,
``MS8_WORKER_DB_TIMEOUT_SECONDS`` (see ``shutdown``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.db import Database, retry_connection
from shared.listener import Listener
from shared.logging import get_logger
from shared.queue import Job
from shared.service import Service
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
from worker.fetcher import Fetcher
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
        self._released: list[Job] = []
        self.clients = Clients()
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.clean_stop = False

        s = settings
        self.wakeup = Wakeup(self.concurrency, poll_seconds=s.poll_seconds,
                             trust_notifications=not s.poll_only)
        self.executor = Executor(db, self.worker_id, self.handlers, self.clients,
                                 self._outcome_to_completer, s.max_run_seconds)
        self.endings = Endings(self.metrics, self.worker_id, s.job_log_level)
        self.completer = Completer(
            db, self.worker_id, window=s.complete_window_seconds, max_batch=s.complete_batch,
            db_timeout=s.db_timeout_seconds, on_flushed=self._saved_to_slots,
            on_retry=self._retry_to_wakeup, on_batch=self.metrics.completion_batch.observe)
        self.fetcher = Fetcher(
            db, self.worker_id, db_timeout=s.db_timeout_seconds,
            durable_claims=s.claim_commit == "durable",
            backlog_limit=2 * s.complete_batch, wakeup=self.wakeup, slots=self.slots,
            executor=self.executor, completer=self.completer, endings=self.endings,
            metrics=self.metrics)
        self.heartbeat = Heartbeat(
            db, self.worker_id, interval=s.heartbeat_seconds, db_timeout=s.db_timeout_seconds,
            held=self.slots.held_ids, on_lost=self._lost_to_executor)
        # No session connection in poll-only mode: the stall timeout is the only net there.
        self.session_lock = None if s.poll_only else SessionLock(
            db, self.worker_id, check_seconds=s.listen_check_seconds,
            on_held=self._lock_to_heartbeat)
        self.registration = Registration(
            db, self.worker_id, self.concurrency, interval=s.registry_seconds,
            db_timeout=s.db_timeout_seconds, session_lock=self.session_lock is not None)
        self.listener = None if s.poll_only else Listener(
            db, ["wakeup", "cancel"], self._notification_to_wakeup,
            on_connect=self._connect_to_wakeup, health_interval=s.listen_check_seconds,
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
                db, self.worker_id, service=self.maintenance, on_change=self._leading_to_metrics)
        elif s.maintenance:
            self.leadership = Leadership(
                db, self.worker_id, lead=self.maintenance.run_on,
                wait_seconds=s.leader_wait_seconds, on_change=self._leading_to_metrics)

    @staticmethod
    def check(settings: WorkerSettings, handlers: Mapping[str, Handler]) -> dict[str, Handler]:
        """The handlers of the queues to run; raises ``HandlerError`` naming what is wrong."""
        queues = settings.concurrency_of(handlers, concurrencies())
        if not queues:
            raise HandlerError("no queue to run: no handler is registered")
        return select(handlers, queues)

    @property
    def services(self) -> dict[str, Service]:
        """The worker's background services, by name, in the order they start."""
        found: list[Service | None] = [
            self.session_lock, self.listener, self.fetcher, self.completer, self.heartbeat,
            self.registration, self.leadership]
        return {service.name: service for service in found if service is not None}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Take the session lock, register, start listening and the loops; returns once
        the worker is fetching."""
        if self.session_lock is not None:
            await self.session_lock.start()  # before registering: maintenance looks for it
        await retry_connection(self.registration.register, what="worker registry")
        if self.listener is not None:
            await self.listener.start()
        for service in (self.fetcher, self.completer, self.heartbeat, self.registration):
            await service.start()
        if self.leadership is not None:
            await self.leadership.start()
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
        await self.fetcher.stop()  # the fetch under way, if any, ends first
        if self.leadership is not None:
            await self.leadership.stop()
        await drain_handlers(self.executor, grace, self._hurry)
        # From here on, the database gets one budget for everything that is left.
        deadline = asyncio.get_running_loop().time() + self.settings.db_timeout_seconds
        await self.completer.stop()  # flush from here on, not from its loop
        # Handlers that ignored their cancellation still hold their job: hand it back too.
        unfinished = {job.id for job in self._released} | self.executor.running_ids
        clean = await hand_over(self.db, self.worker_id, self.completer, unfinished, deadline)
        await self.heartbeat.stop()
        await self.registration.stop()
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

    def free(self, queue_name: str) -> int:
        return self.slots.free(queue_name)

    # ------------------------------------------------------------------ the links
    # Each method below is what one part hands another: its name says from what to what.

    def _outcome_to_completer(self, job: Job, outcome: Outcome) -> None:
        """A handler ended: free its slot, and queue its result to be reported."""
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

    def _retry_to_wakeup(self, job: Job, at: datetime) -> None:
        """A reported failure will retry at ``at``: arm its queue's timer for then."""
        self.endings.retrying(job, at)
        self.wakeup.retry_at(job.queue, at)

    def _saved_to_slots(self, saved: list[tuple[Job, str]]) -> None:
        """Results are stored: count, time and log each run by where it ended up, free
        their jobs, and make their queues due (room may have opened under a cap)."""
        jobs = []
        for job, state in saved:
            self.endings.saved(job, state)
            self.slots.let_go(job)
            jobs.append(job)
        for queue_name in {job.queue for job in jobs}:
            self.wakeup.reported(queue_name)

    def _lost_to_executor(self, job_ids: set[int]) -> None:
        """The heartbeat found jobs no longer held by this worker: cancel their handlers."""
        cancelled = self.executor.cancel(job_ids, LOST)
        if cancelled:
            log.warning("jobs no longer held by this worker; handlers cancelled",
                        jobs=sorted(cancelled))

    def _notification_to_wakeup(self, channel: str, payload: dict[str, Any]) -> None:
        """A NOTIFY: a wakeup makes its queue due (and maintenance stop resting); a cancel
        stops the handlers of the jobs it names."""
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

    async def _connect_to_wakeup(self) -> None:
        """The listener (re)connected: every queue is due, since notifications may have
        been missed meanwhile."""
        self.wakeup.connected()
        self.maintenance.nudge()
        if self.started.is_set():
            log.info("listening again; fetching to catch up")

    def _lock_to_heartbeat(self) -> None:
        """The session lock is held again after its connection was lost: maintenance may
        have taken jobs back meanwhile, so beat now rather than at the next interval."""
        if self.started.is_set() and not self._stopping.is_set():
            self.heartbeat.wake()

    def _leading_to_metrics(self, leading: bool) -> None:
        """Leadership changed: the leader gauge says so."""
        self.metrics.leader.set(1 if leading else 0)
