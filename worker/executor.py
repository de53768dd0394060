"""Running handlers: one asyncio task per job, under the job's run timeout, cancellable.

The run timeout is one ``loop.call_later`` handle per run that cancels the task (about a
third of what an ``asyncio.timeout`` scope costs per job, which reschedules and checks
its own state on enter and exit); it behaves as the scope did: a handler that lets the
cancellation through, or turns it into a ``TimeoutError``, ends as ``timeout``. A handler
that extends its deadline (``JobContext.extend_deadline``) re-arms the handle for the
seconds the database says are left.

Every run ends in exactly one ``Outcome``, handed to ``on_done``:

    completed   the handler returned a JSON-able value     → completer completes the job
    failed      the handler raised (or returned non-JSON)  → completer fails the attempt
    interrupted the handler met the database gone          → completer gives the job back
    timeout     the run timeout elapsed; handler cancelled → completer fails it: "timeout"
    cancelled   the job was cancelled (cancel NOTIFY)      → nothing to report
    lost        the job is no longer ours (heartbeat)      → nothing to report
    released    the worker is stopping                     → the runner hands it back

A database outage is not the job's fault: a handler that raises a connection error of
the database driver (``shared.db.is_database_outage``: a snapshot write, a query, its
deadline extension, when the database went away) ends ``interrupted``, the outage is
reported to the process's watch, and the job goes back to the queue as a crashed one
does, its attempt given back and a crash counted (so a job that brings the database down
each time still ends, at its queue's crash limit). A connection error of its own (an
HTTP call) is a failure like any other.

A handler that swallows its cancellation and returns still ends with the reason it was
cancelled for: once the job is not ours, its result must not be reported.

A job can come back to the same worker while its previous attempt still runs here (the
attempt was reclaimed during an outage before the heartbeat told us). Starting the new
attempt cancels the old one as lost; runs are told apart by identity, never by job id
alone, so the old run's end cannot disturb the new one.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.db import Database, is_database_outage
from shared.logging import get_logger
from shared.queue import (
    MAX_RUN_TIMEOUT_SECONDS,
    TIMEOUT_MESSAGE,
    Failure,
    InvalidInput,
    Job,
    json_text,
)
from worker.clients import Clients
from worker.context import JobContext, PermanentError
from worker.handlers import Handler

log = get_logger(__name__)

COMPLETED = "completed"
FAILED = "failed"
INTERRUPTED = "interrupted"
TIMEOUT = "timeout"
CANCELLED = "cancelled"
LOST = "lost"
RELEASED = "released"
CANCEL_REASONS = (CANCELLED, LOST, RELEASED)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    seconds: float
    output: Any = None
    failure: Failure | None = None


@dataclass(eq=False, slots=True)
class _Run:
    job: Job
    task: asyncio.Task[None] | None = None
    reason: str | None = None
    started: float = field(default_factory=time.monotonic)
    expired: bool = False  # the run timeout cancelled the task
    timeout: float | None = None  # the run timeout, as extended
    timer: asyncio.TimerHandle | None = None


class Executor:
    """Starts handler tasks and tracks them until each has reported its outcome."""

    def __init__(
        self, db: Database, worker_id: str, handlers: Mapping[str, Handler],
        clients: Clients, on_done: Callable[[Job, Outcome], None],
        max_run_seconds: float = MAX_RUN_TIMEOUT_SECONDS,
    ) -> None:
        self._db = db
        self._worker_id = worker_id
        self._handlers = handlers
        self._clients = clients
        self._on_done = on_done
        self.max_run_seconds = max_run_seconds
        self._runs: dict[int, _Run] = {}  # the current run of each job id
        self._active: set[_Run] = set()  # every run not ended yet (old attempts included)
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def running_ids(self) -> set[int]:
        return set(self._runs)

    def __len__(self) -> int:
        return len(self._active)

    def start(self, job: Job) -> None:
        if job.id in self._runs:
            self.cancel([job.id], LOST)  # a previous attempt of it, still running here
        run = _Run(job)
        self._runs[job.id] = run
        self._active.add(run)
        self._idle.clear()
        # Unnamed: naming a task costs a call of its own per job (3.5 % of the worker's
        # samples draining); ``_runs`` maps jobs to their tasks.
        run.task = asyncio.get_running_loop().create_task(self._run(run))

    def cancel(self, job_ids: Iterable[int], reason: str) -> list[int]:
        """Cancel the handlers of those jobs that run here; returns their ids."""
        assert reason in CANCEL_REASONS
        cancelled = []
        for job_id in job_ids:
            run = self._runs.get(job_id)
            if run is None or run.reason is not None or run.task is None:
                continue
            run.reason = reason
            run.task.cancel()
            cancelled.append(job_id)
        return cancelled

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no handler runs (True), or ``timeout`` elapses (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _run(self, run: _Run) -> None:
        job = run.job
        outcome: Outcome
        try:
            outcome = await self._execute(run)
        except asyncio.CancelledError:
            if run.reason is None:  # not ours: let it through
                self._forget(run)
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            outcome = Outcome(run.reason, time.monotonic() - run.started)
        if run.reason is not None and outcome.kind not in CANCEL_REASONS:
            outcome = Outcome(run.reason, outcome.seconds)
        self._forget(run)
        try:
            self._on_done(job, outcome)
        except Exception:
            log.exception("reporting an outcome failed", job_id=job.id, outcome=outcome.kind)

    def _forget(self, run: _Run) -> None:
        if self._runs.get(run.job.id) is run:
            del self._runs[run.job.id]
        self._active.discard(run)
        if not self._active:
            self._idle.set()

    async def _execute(self, run: _Run) -> Outcome:
        job = run.job
        handler = self._handlers.get(job.queue)
        if handler is None:  # only fetched queues with handlers: a bug if it happens
            return self._failed(run, Failure(job.id, f"no handler for queue {job.queue!r}"))
        ctx = JobContext(job, self._worker_id, self._db, self._clients,
                         lambda left: self._rearm(run, left), self.max_run_seconds)
        run.timeout = job.run_timeout_seconds
        if run.timeout is not None:
            run.timer = asyncio.get_running_loop().call_later(run.timeout, self._expire, run)
        try:
            output = await handler(ctx)
        except asyncio.CancelledError:
            if self._took_back_expiry(run):
                return self._timed_out(run)
            raise
        except PermanentError as error:
            self._took_back_expiry(run)
            return self._failed(run, _failure_of(job, error, retry=False))
        except Exception as error:
            if self._took_back_expiry(run) and isinstance(error, TimeoutError):
                return self._timed_out(run)
            if is_database_outage(error):
                return self._interrupted(run, error)
            return self._failed(run, _failure_of(job, error, retry=True))
        finally:
            if run.timer is not None:
                run.timer.cancel()
                run.timer = None
        self._took_back_expiry(run)  # the handler swallowed the timeout's cancellation
        try:
            json_text(output, "output")
        except InvalidInput as error:
            return self._failed(run, Failure(
                job.id, f"the handler returned a value that cannot be stored: {error}",
                retry=False))
        return Outcome(COMPLETED, self._elapsed(run), output=output)

    def _rearm(self, run: _Run, seconds_left: float) -> None:
        """The deadline moved: time out ``seconds_left`` from now instead."""
        if run.timer is None or run.expired:  # ended, or timed out already
            return
        run.timer.cancel()
        run.timeout = self._elapsed(run) + seconds_left
        run.timer = asyncio.get_running_loop().call_later(
            max(0.0, seconds_left), self._expire, run)

    def _expire(self, run: _Run) -> None:
        """The run timeout elapsed: cancel the handler, unless it is ending anyway."""
        task = run.task
        if run.reason is None and task is not None and not task.done():
            run.expired = True
            task.cancel()

    @staticmethod
    def _took_back_expiry(run: _Run) -> bool:
        """Undo the timeout's cancellation request once the handler has ended otherwise
        (as ``asyncio.timeout`` does); True when the run timeout had elapsed."""
        if not run.expired or run.reason is not None:
            return False
        run.expired = False
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
        return True

    def _timed_out(self, run: _Run) -> Outcome:
        return Outcome(TIMEOUT, self._elapsed(run), failure=Failure(
            run.job.id, TIMEOUT_MESSAGE,
            f"the handler was cancelled after the run timeout of {round(run.timeout or 0, 3):g} s"))

    def _interrupted(self, run: _Run, error: Exception) -> Outcome:
        self._db.outage.report("handler", error)
        failure = _failure_of(run.job, error, retry=True)
        return Outcome(INTERRUPTED, self._elapsed(run), failure=Failure(
            run.job.id, f"interrupted: the database went away while it ran ({failure.message})",
            failure.traceback))

    def _failed(self, run: _Run, failure: Failure) -> Outcome:
        return Outcome(FAILED, self._elapsed(run), failure=failure)

    @staticmethod
    def _elapsed(run: _Run) -> float:
        return time.monotonic() - run.started


def _failure_of(job: Job, error: BaseException, *, retry: bool) -> Failure:
    """The handler's exception as a Failure: "Type: message" and its traceback."""
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return Failure(job.id, message, "".join(traceback.format_exception(error)), retry=retry)
