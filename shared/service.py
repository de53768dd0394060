"""The lifecycle every long-running piece of a process shares: one task, started and
stopped the same way, and one way of failing.

    start() ──► run() ──returns──► finished
                  │ raises
                  ▼
        connection error ──► db.outage.report (one story per outage, see shared.outage)
        RetryLater       ──► its warning, if it has one (no traceback)
        database error   ──► the service's ``db_error`` warning, if it has one (no
                             traceback: the database said what went wrong)
        anything else    ──► log.exception, once per failure
                  │
                  ▼
        failed(error) ──► pause (Backoff; an outage's end cuts it short) ──► run() again

``stop()`` ends the task and waits until it has unwound (its ``finally`` blocks closed
what it held); it is idempotent, and it returns at once from a pause. A service whose
run must end at a point of its own choosing (the worker's fetch loop: a fetch cut in
half may have claimed jobs) overrides ``interrupt()`` to ask instead of cancelling.

``Loop`` is the common case: do one pass, then rest for the interval or until
``wake()``; a failed pass is tried again after the backoff, a good one resets it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg

from shared.backoff import Backoff
from shared.db import Database, is_connection_error
from shared.logging import get_logger, mask_secrets

log = get_logger(__name__)


class RetryLater(Exception):
    """Raised by a service's run on purpose: stop this attempt, pause, try again.

    ``message`` (when given) is logged as a warning with ``error``, without a traceback:
    what failed is known and said (a statement the database refused, say)."""

    def __init__(self, message: str = "", error: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error = error


class Service:
    """One background task named ``name``; subclasses implement ``run``.

    ``first`` and ``cap`` are the backoff's (``shared.backoff``). ``db_error``, when
    given, is the warning for an error the database returned (``asyncpg.PostgresError``:
    a statement refused, a session ended by the server); without it such an error is
    logged with its traceback like any other."""

    def __init__(
        self, db: Database, name: str, *, first: float, cap: float, db_error: str | None = None,
    ) -> None:
        self.db = db
        self.name = name
        self.db_error = db_error
        self.backoff = Backoff(first, cap)
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def start(self) -> None:
        """Start the task (a no-op if it runs already)."""
        if self.running:
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._supervise(), name=self.name)

    async def stop(self) -> None:
        """End the task and wait until it has unwound; a no-op when not running."""
        self._stopping.set()
        task = self._task
        if task is None:
            return
        if not task.done():
            self.interrupt(task)
        await _ended(task)
        if self._task is task:
            self._task = None

    async def finished(self) -> None:
        """Wait until the task has ended (``run`` returned, or the service was stopped)."""
        if self._task is not None:
            await _ended(asyncio.shield(self._task))

    def interrupt(self, task: asyncio.Task[None]) -> None:
        """Make a running task end (``stop``): cancel it, unless a subclass asks nicer."""
        task.cancel()

    async def run(self) -> None:
        """The service's work; returning ends the service."""
        raise NotImplementedError

    async def failed(self, error: Exception) -> None:
        """Called after ``run`` raised ``error`` and it was logged, before the pause:
        release what the attempt held (a connection, a flag others read)."""

    async def _supervise(self) -> None:
        while not self.stopping:
            try:
                await self.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.failures += 1
                self._classify(error)
                await self.failed(error)
            await self.db.outage.pause(self.backoff.next(), unless=self._stopping)

    def _classify(self, error: Exception) -> None:
        retry_in = round(self.backoff.delay, 2)
        cause = error.error if isinstance(error, RetryLater) else error
        if cause is not None and is_connection_error(cause):
            self.db.outage.report(self.name, cause)
        elif isinstance(error, RetryLater):
            if error.message:
                log.warning(error.message, service=self.name, retry_in=retry_in,
                            error=mask_secrets(str(cause or "")) or None)
        elif self.db_error is not None and isinstance(error, asyncpg.PostgresError):
            log.warning(self.db_error, service=self.name, retry_in=retry_in,
                        error=mask_secrets(str(error)))
        else:
            log.exception("service failed; restarting it", service=self.name,
                          retry_in=retry_in)


async def _ended(task: asyncio.Future[None]) -> None:
    """Wait for ``task``, swallowing its cancellation but not the caller's."""
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


class Loop(Service):
    """A service that does one pass (``work``), then rests for ``interval`` seconds
    (``None``: until woken) or until ``wake()``. ``immediate=False`` rests before the
    first pass; a pass that failed is tried again as soon as the backoff is over."""

    def __init__(
        self, db: Database, name: str, *, interval: float | None, first: float, cap: float,
        immediate: bool = True, work: Callable[[], Awaitable[None]] | None = None,
        db_error: str | None = None,
    ) -> None:
        super().__init__(db, name, first=first, cap=cap, db_error=db_error)
        self.interval = interval
        self._immediate = immediate
        self._work = work
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Cut the current rest short (a wake during a pass makes the next one start at
        once)."""
        self._woken.set()

    async def work(self) -> None:
        """One pass; raising is a failure (see ``Service``)."""
        if self._work is None:
            raise NotImplementedError
        await self._work()

    def rest(self) -> float | None:
        """Seconds to rest after a pass; ``None`` until woken."""
        return self.interval

    async def run(self) -> None:
        if not self._immediate and not self.failures:
            await self._rest()
        while not self.stopping:
            await self.work()
            self.backoff.reset()
            await self._rest()

    async def _rest(self) -> None:
        seconds = self.rest()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()
        self._woken.clear()
