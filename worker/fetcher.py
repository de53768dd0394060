"""The fetch loop: wait until queues are due (``wakeup``), claim as many of their jobs as
there are free slots in one statement, start them (``executor``).

    wakeup.wait() ──due queues──► fetch(free slots of each) ──► slots.take + executor.start
                                    │ fails
                                    ▼
                 the queues due again, and after a connection error the next fetch
                 first hands back what a lost reply may have claimed (release_orphans)

Results waiting to be reported are bounded: past ``backlog_limit`` of them nothing is
fetched until the completer catches up (its flush makes the queues due again).

Stopping asks rather than cancels (``wakeup.stop()``): a fetch under way finishes and
its jobs start, so that none is claimed and then forgotten.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from shared import queue
from shared.db import Database, is_connection_error
from shared.logging import get_logger
from shared.service import Service
from worker.completer import Completer
from worker.endings import Endings
from worker.executor import Executor
from worker.metrics import WorkerMetrics
from worker.slots import Slots
from worker.wakeup import Wakeup

log = get_logger(__name__)


class Fetcher(Service):
    def __init__(
        self, db: Database, worker_id: str, *, db_timeout: float, backlog_limit: int,
        wakeup: Wakeup, slots: Slots, executor: Executor, completer: Completer,
        endings: Endings, metrics: WorkerMetrics, durable_claims: bool,
    ) -> None:
        super().__init__(db, "fetch", first=0.1, cap=10.0)
        self._worker_id = worker_id
        self._db_timeout = db_timeout
        self._durable_claims = durable_claims  # False: MS8_CLAIM_COMMIT=async
        self._backlog_limit = backlog_limit
        self._wakeup = wakeup
        self._slots = slots
        self._executor = executor
        self._completer = completer
        self._endings = endings
        self._metrics = metrics
        self._wanted: dict[str, int] = {}  # of the fetch under way
        self._orphans_possible = False

    def interrupt(self, task: asyncio.Task[None]) -> None:
        """Stop at the next wait for due queues, not in the middle of a fetch."""
        self._wakeup.stop()

    async def run(self) -> None:
        while not self.stopping:
            due = await self._wakeup.wait()
            if self.stopping:
                return
            if len(self._completer) >= self._backlog_limit:
                continue  # the completer's next flush makes these queues due again
            free = self._slots.free
            self._wanted = {q: free(q) for q in sorted(due) if free(q) > 0}
            if not self._wanted:
                continue
            await self._fetch(self._wanted)
            self._wanted = {}
            self.backoff.reset()

    async def failed(self, error: Exception) -> None:
        """A fetch failed: its queues are due again once the pause is over."""
        wanted, self._wanted = self._wanted, {}
        if not wanted:
            return  # the wait for due queues failed, not a fetch
        self._metrics.db_errors.labels("fetch").inc()
        if is_connection_error(error):
            self._orphans_possible = True
        for name in wanted:
            self._wakeup.notified(name, None)

    async def _fetch(self, wanted: dict[str, int]) -> None:
        timeout = self._db_timeout
        if self._orphans_possible:
            async with asyncio.timeout(timeout):
                orphans = await queue.release_orphans(
                    self.db, self._worker_id, self._slots.held_ids())
            self._orphans_possible = False
            if orphans:
                log.info("handed back jobs claimed by a fetch whose reply was lost",
                         jobs=orphans)
        async with asyncio.timeout(timeout):
            jobs = await queue.fetch(self.db, wanted, self._worker_id,
                                     durable=self._durable_claims)
        self._metrics.fetches.inc()
        self._metrics.fetch_batch.observe(len(jobs))
        got = Counter(job.queue for job in jobs)
        self._wakeup.fetched(wanted, got)
        if jobs:
            # Results still pending for these ids belong to attempts that are over.
            self._endings.forget(self._completer.forget(job.id for job in jobs))
            for job in jobs:
                self._slots.take(job)
                self._executor.start(job)
        short = [name for name in wanted if got[name] < wanted[name]]
        ask = self._wakeup.unknown_next_start(short)
        if ask:
            if jobs:  # the handlers just started run first: they would wait for this
                await asyncio.sleep(0)  # statement to be sent (~0.2 ms of a lone job's start)
            try:
                async with asyncio.timeout(timeout):
                    start_after = await queue.next_start_after(self.db, ask)
            except Exception as error:
                if not is_connection_error(error):
                    raise
                self.db.outage.report("next start", error)
                return
            self._wakeup.arm(ask, start_after)
