"""Reporting results in batches: one ``complete_many``, one ``fail_many`` and one
``give_back_jobs`` per flush.

Outcomes accumulate for a short window (a few ms) or until a batch is full, then go out
in one statement each, so that a busy worker spends round trips per batch, not per job.
When nothing else runs, there is nothing to wait for: the runner ``nudge``s and the
flush is immediate.

A result is never lost to a database outage: a flush that fails on a connection error
keeps its results and is retried with backoff (``shared.service``) until it goes
through (each statement only touches jobs that are still active and held by this
worker, so repeating one whose reply was lost is harmless). The jobs stay in the
worker's heartbeat meanwhile.

A result the database refuses because of what it holds (``caused_by_result``: an output
with a NUL character, which jsonb cannot store) is found by retrying the batch one by
one, so it cannot hold the others back: a refused output fails its job for good with the
database's reason; a refused failure is dropped and logged, and the job, no longer
heartbeated, is reclaimed by maintenance. Any other error (a statement timeout, a
pooler that lost a prepared statement) says nothing about the results: they stay
pending and the report is retried with backoff, so a job that succeeded is never
recorded as failed for it.

Jobs whose handlers were interrupted by a database outage wait here too, to be given
back (``give_back_jobs``: the attempt is not spent) once the database answers again;
the database cannot refuse those for what they hold, so they never hold the others back.

A pending failure becomes stale when its job is fetched again (its attempt is over,
whether our report committed before the reply was lost or the job was reclaimed);
``forget`` drops it so that it cannot fail the new attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import asyncpg

from shared import queue
from shared.backoff import Backoff
from shared.db import Database, is_connection_error
from shared.logging import get_logger, mask_secrets
from shared.queue import Failure, Job
from shared.service import Loop, RetryLater

log = get_logger(__name__)

_Item = tuple[Job, Any]  # (job, output) or (job, Failure)
# What became of a reported result: completed, retry or failed; released when it was
# given back; lost when the job was no longer this worker's; dropped when the database
# refused it.
LOST, DROPPED, RELEASED = "lost", "dropped", "released"


def caused_by_result(error: BaseException) -> bool:
    """Whether saving failed because of the result itself (its output or error text):
    JSON it cannot be (the core's ``InvalidInput``), or a value PostgreSQL refuses to
    store (SQLSTATE class 22, data exception: a NUL in jsonb; class 54, a limit
    exceeded). Anything else (a timeout, a conflict, a pooler losing a prepared
    statement) says nothing about the result, which is then reported again."""
    if isinstance(error, queue.InvalidInput):
        return True
    state = getattr(error, "sqlstate", None) if isinstance(error, asyncpg.PostgresError) else None
    return isinstance(state, str) and state[:2] in ("22", "54")


class Completer(Loop):
    """Batches completions and failures of one worker's jobs."""

    def __init__(
        self, db: Database, worker_id: str, *, window: float, max_batch: int,
        db_timeout: float, on_flushed: Callable[[list[tuple[Job, str]]], None],
        on_retry: Callable[[Job, datetime], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(db, "completer", interval=None, first=0.05, cap=5.0)
        self._worker_id = worker_id
        self._window = window
        self._max_batch = max_batch
        self._db_timeout = db_timeout
        self._on_flushed = on_flushed
        self._on_retry = on_retry
        self._on_batch = on_batch
        self._completions: dict[int, _Item] = {}
        self._failures: dict[int, _Item] = {}
        self._give_backs: dict[int, _Item] = {}  # (job, Failure saying why)
        self._now = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._sending: set[int] = set()  # id() of the items of the flush under way

    def __len__(self) -> int:
        return len(self._completions) + len(self._failures) + len(self._give_backs)

    @property
    def pending_ids(self) -> set[int]:
        return set(self._completions) | set(self._failures) | set(self._give_backs)

    def complete(self, job: Job, output: Any) -> None:
        self._completions[job.id] = (job, output)
        self._added()

    def fail(self, job: Job, failure: Failure) -> None:
        self._failures[job.id] = (job, failure)
        self._added()

    def give_back(self, job: Job, why: Failure) -> None:
        """Hand the job back without spending its attempt (its run met a database outage)."""
        self._give_backs[job.id] = (job, why)
        self._added()

    def nudge(self) -> None:
        """Flush without waiting for the window: no further result is coming soon."""
        if len(self):
            self._now.set()

    def forget(self, job_ids: Iterable[int]) -> list[Job]:
        """Drop stale results of jobs that were fetched again; returns the jobs whose
        results were dropped unsent. A result of the flush under way is already sent: the
        flush still reports what became of it when it ends."""
        dropped = []
        for job_id in job_ids:
            for pending in self._kinds():
                item = pending.pop(job_id, None)
                if item is not None and id(item) not in self._sending:
                    dropped.append(item[0])
        if not len(self):
            self._empty.set()
        return dropped

    def _added(self) -> None:
        self._empty.clear()
        self.wake()
        if len(self) >= self._max_batch:
            self._now.set()

    def _kinds(self) -> tuple[dict[int, _Item], ...]:
        return (self._completions, self._failures, self._give_backs)

    async def work(self) -> None:
        """Flush what is pending: after the window, or at once when nudged (or when the
        batch is full). Results left pending when this fails go out at the retry."""
        if not len(self):
            return
        if self._window > 0 and not self._now.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), self._window)
        self._now.clear()
        flushed = await self.flush_once()
        if len(self):  # more than one batch, or a retry: no window for them
            self._now.set()
            self.wake()
        if not flushed:
            raise RetryLater()  # reported (or logged) by the flush

    async def failed(self, error: Exception) -> None:
        self._now.set()  # what is pending goes out as soon as the pause is over

    async def drain(self, timeout: float) -> bool:
        """Flush everything, retrying for at most ``timeout`` seconds; True when all went.
        Call it once the loop is stopped (at shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        backoff = Backoff(0.05, 2.0)
        while len(self):
            if await self.flush_once():
                continue
            wait = backoff.next()
            if loop.time() + wait > deadline:
                return False
            await asyncio.sleep(wait)
        return True

    async def flush_once(self) -> bool:
        """Send one batch of each kind; False when the database could not be reached."""
        completions = list(self._completions.values())[: self._max_batch]
        failures = list(self._failures.values())[: self._max_batch]
        give_backs = list(self._give_backs.values())[: self._max_batch]
        if not completions and not failures and not give_backs:
            return True
        self._sending = {id(item) for item in completions + failures + give_backs}
        try:
            return await self._flush(completions, failures, give_backs)
        finally:
            self._sending = set()

    async def _flush(self, completions: list[_Item], failures: list[_Item],
                     give_backs: list[_Item]) -> bool:
        try:
            saved = await self._send(completions, failures, give_backs)
        except Exception as error:
            if is_connection_error(error):
                self.db.outage.report("completer", error)
                return False
            if not caused_by_result(error):
                log.warning("results not saved, will retry", pending=len(self),
                            error=mask_secrets(str(error)))
                return False
            log.warning("a result refused by the database; retrying them one by one",
                        error=mask_secrets(str(error)))
            return await self._send_one_by_one(completions + failures + give_backs)
        self._done(completions + failures + give_backs, saved)
        return True

    async def _send(self, completions: list[_Item], failures: list[_Item],
                    give_backs: list[_Item] | None = None) -> dict[int, str]:
        """Report; returns what became of each job's result."""
        give_backs = give_backs or []
        saved: dict[int, str] = {}
        async with asyncio.timeout(self._db_timeout):
            if completions:
                completed = set(await queue.complete_many(
                    self.db, [(job.id, output) for job, output in completions],
                    worker_id=self._worker_id))
                for job, _ in completions:
                    saved[job.id] = "completed" if job.id in completed else LOST
            if failures:
                results = await queue.fail_many(
                    self.db, [failure for _, failure in failures], worker_id=self._worker_id)
                self._retried(failures, results)
                states = {result.id: result.state for result in results}
                for job, _ in failures:
                    saved[job.id] = states.get(job.id, LOST)
            if give_backs:
                given = {r.id: r.result.state for r in await queue.give_back_jobs(
                    self.db, self._worker_id,
                    [(job.id, why.message) for job, why in give_backs])}
                for job, _ in give_backs:
                    state = given.get(job.id)
                    saved[job.id] = (LOST if state is None
                                     else "failed" if state == "failed" else RELEASED)
        if self._on_batch is not None:
            self._on_batch(len(completions) + len(failures) + len(give_backs))
        return saved

    def _retried(self, failures: list[_Item], results: list[queue.FailResult]) -> None:
        if self._on_retry is None:
            return
        jobs = {job.id: job for job, _ in failures}
        for result in results:
            if result.state == "retry" and result.start_after is not None:
                self._on_retry(jobs[result.id], result.start_after)

    async def _send_one_by_one(self, items: list[_Item]) -> bool:
        """Each result alone: the one the database refuses for what it holds is settled
        (an output fails its job, a failure is dropped); one refused for another reason
        stays pending. False when anything is left to retry."""
        for item in items:
            job = item[0]
            is_failure = self._failures.get(job.id) is item
            is_give_back = self._give_backs.get(job.id) is item
            is_completion = not is_failure and not is_give_back
            saved: dict[int, str] = {}
            try:
                saved = await self._send([item] if is_completion else [],
                                         [item] if is_failure else [],
                                         [item] if is_give_back else [])
            except Exception as error:
                if is_connection_error(error) or not caused_by_result(error):
                    return False
                if is_completion:
                    saved = await self._fail_refused(job, error)
                if not saved:
                    log.error("result dropped: the database refuses it", job_id=job.id,
                              error=mask_secrets(str(error)))
            self._done([item], saved)
        return True

    async def _fail_refused(self, job: Job, error: Exception) -> dict[int, str]:
        """A completion the database refuses (an output it cannot store) fails the job
        for good, with the reason, rather than leaving it to stall; {} when that is
        refused too."""
        failure = Failure(job.id, f"the database refused the job's output: {error}",
                          retry=False)
        try:
            return await self._send([], [(job, failure)])
        except Exception as again:
            if is_connection_error(again) or not caused_by_result(again):
                raise
            return {}

    def _done(self, items: list[_Item], saved: dict[int, str]) -> None:
        """Forget reported items (unless replaced meanwhile) and say what became of each,
        even of one that went stale while it was being sent (its job fetched again: the
        reply can come after the new attempt's fetch)."""
        finished = []
        for item in items:
            job = item[0]
            for pending in self._kinds():
                if pending.get(job.id) is item:
                    del pending[job.id]
            finished.append((job, saved.get(job.id, DROPPED)))
        if not len(self):
            self._empty.set()
        if finished:
            self._on_flushed(finished)
