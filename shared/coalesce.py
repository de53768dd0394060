"""Group commit: calls made at the same time share one statement and one commit.

Every commit waits for its WAL flush, and a notifying commit also holds the notification
queue's lock through it, so under many concurrent callers the commits, not the
statements, bound the rate. A ``Coalescer`` gathers the items that arrive while its
flushes are busy and hands them to ``flush`` together:

- Alone, an item goes straight out (one loop tick of delay at most).
- At most ``max_flushes`` groups are in flight; items arriving meanwhile wait and leave
  together in the next group, of at most ``max_group`` items.
- ``flush`` returns one result per item, in order; each caller gets its own.
- If a group fails (the database is unreachable, say), every caller in it gets the
  error: ``flush`` runs a group as one transaction, so none of it was written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    def __init__(self, flush: Callable[[list[Item]], Awaitable[Sequence[Result]]], *,
                 max_flushes: int = 4, max_group: int = 500) -> None:
        self._flush_group = flush
        self._max_flushes = max_flushes
        self._max_group = max_group
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._in_flight = 0
        self._kick_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups_sent = 0

    async def submit(self, item: Item) -> Result:
        """Hand one item over, possibly together with others submitted at the same time."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if not self._kick_scheduled:
            # Let the other callers already ready in this loop iteration join first.
            self._kick_scheduled = True
            loop.call_soon(self._kick)
        return await future

    def _kick(self) -> None:
        self._kick_scheduled = False
        while self._pending and self._in_flight < self._max_flushes:
            group = self._pending[: self._max_group]
            del self._pending[: self._max_group]
            group = [(item, future) for item, future in group if not future.cancelled()]
            if not group:
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._flush(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._flush_group([item for item, _ in group])
            self.groups_sent += 1
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)
        except asyncio.CancelledError:
            for _, future in group:
                future.cancel()
            raise
        except Exception as error:
            for _, future in group:
                if not future.done():
                    future.set_exception(error)
        finally:
            self._in_flight -= 1
            self._kick()

    async def close(self) -> None:
        """Wait for the groups in flight (pending items are flushed by them)."""
        while self._tasks or self._pending:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:
                self._kick()
                await asyncio.sleep(0)
