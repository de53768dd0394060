"""One view per process of whether the database answers, so that an outage is one story
in the logs and every loop is back to work as soon as the database is.

Loops that fail on a connection error ``report`` it instead of logging it, then wait
with ``pause(their backoff)``. The first report starts a probe (a fresh connection to
each URL the process uses, and a ping): if the database answers at once, only that
loop's connection was lost (one warning line, ``database connection lost``); if not, an
outage begins:

    report ──► probe ──ok──► "database connection lost" (one line) ──► waiters resume
                 │ fails
                 ▼
       "database unreachable" (one line) ──► probe every ~0.5 s ──ok──► "database back"
                                                                          waiters resume

Reports during an outage are logged at debug level only. ``pause`` returns when the
outage it started in ends, however long the loop's own backoff had grown: the probe's
cadence, not each loop's backoff, decides how soon the process notices the database is
back. The probe backs off too, but its cap stays below a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from shared.backoff import Backoff
from shared.logging import get_logger, mask_secrets
from shared.tasks import cancel_and_wait

log = get_logger(__name__)

PROBE_FIRST = 0.25
PROBE_CAP = 0.5

Probe = Callable[[], Awaitable[None]]


class Outage:
    def __init__(
        self, probe: Probe, *, is_connection_error: Callable[[BaseException], bool],
        first: float = PROBE_FIRST, cap: float = PROBE_CAP,
    ) -> None:
        self._probe = probe
        self._is_connection_error = is_connection_error
        self._first = first
        self._cap = cap
        self._since: float | None = None  # monotonic time of the report that started it
        self._ended: asyncio.Event | None = None  # set when the current check or outage ends
        self._task: asyncio.Task[None] | None = None
        self._first_report: tuple[str, str] = ("", "")
        self.outages = 0

    @property
    def active(self) -> bool:
        """True while a report is being checked or the database is unreachable."""
        return self._ended is not None

    def report(self, what: str, error: BaseException) -> None:
        """``what`` (a loop's name) could not reach the database."""
        message = mask_secrets(str(error)) or type(error).__name__
        if self._ended is not None:
            log.debug("connection error reported", what=what, error=message)
            return
        self._since = time.monotonic()
        self._ended = asyncio.Event()
        self._first_report = (what, message)
        self._task = asyncio.create_task(self._watch(), name="outage-probe")

    async def pause(self, seconds: float, *, unless: asyncio.Event | None = None) -> None:
        """Sleep ``seconds``, or less: until the outage under way now ends (or ``unless``
        is set)."""
        events = [e for e in (self._ended, unless) if e is not None]
        if not events:
            await asyncio.sleep(seconds)
            return
        waits = [asyncio.create_task(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _watch(self) -> None:
        what, message = self._first_report
        if await self._answers():
            log.warning("database connection lost", what=what, error=message)
            self._end()
            return
        self.outages += 1
        log.warning("database unreachable", what=what, error=message)
        backoff = Backoff(self._first, self._cap)
        while not await self._answers():
            await backoff.sleep()
        assert self._since is not None
        log.info("database back", after_seconds=round(time.monotonic() - self._since, 2))
        self._end()

    async def _answers(self) -> bool:
        try:
            await self._probe()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not self._is_connection_error(error):
                log.warning("database probe failed", error=mask_secrets(str(error)))
            return False
        return True

    def _end(self) -> None:
        ended, self._ended, self._task = self._ended, None, None
        if ended is not None:
            ended.set()


class QuietPoolFloor(logging.Filter):
    """asyncpg's pool logs a traceback each time it fails to reconnect its minimum
    connections; during an outage that is what ``Outage`` already says once."""

    def __init__(self, is_connection_error: Callable[[BaseException], bool]) -> None:
        super().__init__()
        self._is_connection_error = is_connection_error

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Failed to restore the pool connection floor"):
            return True
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not self._is_connection_error(error)
