"""Group commit for single sends: jobs sent one at a time, at the same time, share a commit.

Every insert commits with a NOTIFY, and PostgreSQL serialises the commits of notifying
transactions (each holds the notification queue's lock through its WAL flush). Under
many concurrent single sends that lock, not the insert, bounds the rate. A
``SendCoalescer`` (a ``shared.coalesce.Coalescer``) sends the jobs that arrive while
its flushes are busy with one ``send_each``: one statement, one commit, one NOTIFY per
queue. Each caller gets the result of its own job, in the same form as ``send``: a
singleton key already held returns the holder (also when two callers of one group
share a key).

Only for sends outside a caller's transaction: a send that must commit with other work
of the caller goes through ``send(..., conn=conn)``.
"""

from __future__ import annotations

from shared.coalesce import Coalescer
from shared.db import Database
from shared.queue.models import Sent
from shared.queue.send import JobSpec, send_each, send_spec


class SendCoalescer(Coalescer[JobSpec, Sent | Exception]):
    def __init__(self, db: Database, *, max_flushes: int = 4, max_group: int = 500) -> None:
        super().__init__(self._send_group, max_flushes=max_flushes, max_group=max_group)
        self._db = db

    async def send(self, spec: JobSpec) -> Sent:
        """Send one validated job, possibly together with others sent at the same time."""
        result = await self.submit(spec)
        if isinstance(result, Exception):
            raise result
        return result

    async def _send_group(self, specs: list[JobSpec]) -> list[Sent | Exception]:
        if len(specs) == 1:  # alone: the single INSERT, not the bulk path
            return [await send_spec(self._db, specs[0])]
        return await send_each(self._db, specs)
