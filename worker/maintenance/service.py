"""The maintenance schedule: run each task at its interval while this worker leads.

    elected ──► run every task once ──► sleep until the next task is due ──► run it ─┐
                                            ▲                                          │
                                            └───── a task with more to do: again soon ─┘

A task returns how many rows it handled and whether work is left (a full chunk); work
left brings it back after ``AGAIN_SOON`` instead of its interval, so a backlog is worked
off in small statements that never hold locks for long. A task that fails on a bug is
logged and retried at its next interval; a connection error ends the service (the
leader campaigns again).

A task may rest longer than its interval (``Resting``: the liveness check while the fleet
is idle); ``nudge`` tells resting tasks that something happened, and those that were
resting are due again within their interval.

Where a task runs is the leadership's business (``Execute``): on the session leader's
own connection, or, in pass mode, on a pooled connection inside a transaction that won
the pass lock (``None`` when another worker holds it: try again next interval).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from shared.conn import Conn
from shared.db import is_connection_error
from shared.logging import get_logger, mask_secrets
from worker.metrics import WorkerMetrics

log = get_logger(__name__)

AGAIN_SOON = 0.05


class Task(Protocol):
    name: str
    interval: float

    async def run(self, conn: Conn) -> tuple[int, bool]:
        """Do one chunk of work on the leader's connection: (rows handled, more left)."""
        ...


@runtime_checkable
class Resting(Protocol):
    def rest(self) -> float:
        """Seconds until the task is due again (its interval or longer)."""
        ...

    def nudged(self) -> bool:
        """Something happened that the task may need to see: True when it was resting."""
        ...


Execute = Callable[[Task], Awaitable[tuple[int, bool] | None]]


class MaintenanceService:
    def __init__(self, tasks: Sequence[Task], metrics: WorkerMetrics | None = None) -> None:
        self._tasks = list(tasks)
        # Told apart once: an isinstance check against a runtime-checkable protocol costs
        # ~10 µs a task, and the leader's ``nudge`` runs on every wakeup notification,
        # before the fetch it calls for (0.15 ms of that path, with six tasks).
        self._resting = [task for task in self._tasks if isinstance(task, Resting)]
        self._metrics = metrics
        self.passes: dict[str, int] = {task.name: 0 for task in tasks}
        self._due: dict[str, float] = {}  # loop time each task is due, while running
        self._woken = asyncio.Event()

    def nudge(self) -> None:
        """Bring resting tasks back to their interval (a job was sent, a queue resumed)."""
        if not self._due:
            return
        now = asyncio.get_running_loop().time()
        for task in self._resting:
            if task.nudged():
                self._due[task.name] = min(self._due[task.name], now + task.interval)
                self._woken.set()

    async def run(self, execute: Execute) -> None:
        """Run the tasks through ``execute`` until cancelled or a connection error."""
        loop = asyncio.get_running_loop()
        due = self._due = {task.name: loop.time() for task in self._tasks}
        try:
            while True:
                task = min(self._tasks, key=lambda t: due[t.name])
                delay = due[task.name] - loop.time()
                if delay > 0:
                    self._woken.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._woken.wait(), delay)
                    continue  # a nudge may have made another task due first
                due[task.name] = loop.time() + await self._run_task(task, execute)
        finally:
            self._due = {}

    async def run_on(self, conn: Conn) -> None:
        """Run the tasks on one connection (the session leader's)."""
        await self.run(lambda task: task.run(conn))

    async def _run_task(self, task: Task, execute: Execute) -> float:
        """Run one task; returns the delay until it is due again."""
        try:
            result = await execute(task)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if is_connection_error(error):
                raise
            log.exception("maintenance task failed", task=task.name,
                          error=mask_secrets(str(error)))
            return task.interval
        if result is None:  # not this worker's turn
            return task.interval
        handled, more = result
        self.passes[task.name] += 1
        if handled:
            log.info("maintenance", task=task.name, rows=handled)
            if self._metrics is not None:
                self._metrics.maintenance_rows.labels(task.name).inc(handled)
        if more:
            return AGAIN_SOON
        return task.rest() if isinstance(task, Resting) else task.interval
