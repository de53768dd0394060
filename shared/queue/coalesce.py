"""Group commit for single sends: jobs sent one at a time, at the same time, share a commit.

Every insert commits with a NOTIFY, and PostgreSQL serialises the commits of notifying
transactions (each holds the notification queue's lock through its WAL flush). Under
many concurrent single sends that lock, not the insert, bounds the rate. A
``SendCoalescer`` gathers the sends that arrive while its flushes are busy and sends
them with one ``send_many``: one statement, one commit, one NOTIFY per queue.

- Alone, a send goes straight out as a single INSERT (one loop tick of delay at most).
- At most ``max_flushes`` groups are in flight; sends arriving meanwhile wait and leave
  together in the next group, of at most ``max_group`` jobs.
- Each caller gets the result of its own job, in the same form as ``send``: a singleton
  key already held returns the holder (also when two callers of one group share a key).
- If a group fails (the database is unreachable, say), every caller in it gets the error;
  no caller's job was sent, since the group is one transaction.

Only for sends outside a caller's transaction: a send that must commit with other work
of the caller goes through ``send(..., conn=conn)``.
"""

from __future__ import annotations

import asyncio

from shared.db import Database
from shared.queue.models import Sent
from shared.queue.send import JobSpec, send_many, send_spec


class SendCoalescer:
    def __init__(self, db: Database, *, max_flushes: int = 4, max_group: int = 500) -> None:
        self._db = db
        self._max_flushes = max_flushes
        self._max_group = max_group
        self._pending: list[tuple[JobSpec, asyncio.Future[Sent]]] = []
        self._in_flight = 0
        self._kick_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups_sent = 0

    async def send(self, spec: JobSpec) -> Sent:
        """Send one validated job, possibly together with others sent at the same time."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Sent] = loop.create_future()
        self._pending.append((spec, future))
        if not self._kick_scheduled:
            # Let the other requests already ready in this loop iteration join first.
            self._kick_scheduled = True
            loop.call_soon(self._kick)
        return await future

    def _kick(self) -> None:
        self._kick_scheduled = False
        while self._pending and self._in_flight < self._max_flushes:
            group = self._pending[: self._max_group]
            del self._pending[: self._max_group]
            group = [(spec, future) for spec, future in group if not future.cancelled()]
            if not group:
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._flush(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, group: list[tuple[JobSpec, asyncio.Future[Sent]]]) -> None:
        try:
            if len(group) == 1:
                results = [await send_spec(self._db, group[0][0])]
            else:
                results = await send_many(self._db, [spec for spec, _ in group])
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
        """Wait for the groups in flight (pending sends are flushed by them)."""
        while self._tasks or self._pending:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:
                self._kick()
                await asyncio.sleep(0)
