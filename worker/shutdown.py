"""The end of a worker's life: let handlers finish, then leave nothing behind.

    grace period ──(handlers done | grace over | second signal)──► cancel the rest
        ──► report every result ──► hand back every unfinished job ──► (deregister)

Handing back releases a job without counting its attempt, so a job interrupted by a
deploy is not one attempt closer to failing. Everything after the grace period talks
to a database that may be gone, so it all shares one deadline; what could not be
reported or handed back by then is left to maintenance, which reclaims it by its
stale heartbeat, and the stop is reported as not clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from shared import queue
from shared.backoff import Backoff
from shared.db import Database, is_connection_error
from shared.logging import get_logger, mask_secrets
from worker.completer import Completer
from worker.executor import RELEASED, Executor

log = get_logger(__name__)

# How long cancelled handlers get to unwind before their jobs are handed back anyway.
UNWIND_SECONDS = 5.0


async def drain_handlers(executor: Executor, grace: float, hurry: asyncio.Event) -> None:
    """Wait for running handlers up to ``grace`` (or ``hurry``), then cancel the rest."""
    if len(executor):
        waiting = asyncio.create_task(executor.wait_idle(grace))
        hurrying = asyncio.create_task(hurry.wait())
        await asyncio.wait({waiting, hurrying}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiting, hurrying):
            task.cancel()
    if len(executor):
        log.info("grace period over, handing jobs back", jobs=len(executor))
        executor.cancel(executor.running_ids, RELEASED)
        await executor.wait_idle(UNWIND_SECONDS)


async def hand_over(
    db: Database, worker_id: str, completer: Completer, unfinished: Iterable[int],
    deadline: float,
) -> bool:
    """Report every result, hand back every unfinished job; False if the database could
    not be reached by ``deadline`` (loop time)."""
    reported = await completer.drain(left(deadline))
    if not reported:
        log.error("results not reported; maintenance will retry those jobs",
                  jobs=sorted(completer.pending_ids))
    ids = sorted(set(unfinished))
    backoff = Backoff(0.1, 2.0)
    while ids:
        try:
            async with asyncio.timeout(left(deadline)):
                released = await queue.release(db, ids, worker_id)
            log.info("jobs handed back", count=len(released))
            break
        except Exception as error:
            wait = backoff.next()
            if not is_connection_error(error) or left(deadline) < wait:
                log.error("could not hand jobs back; maintenance will reclaim them",
                          jobs=ids, error=mask_secrets(str(error)))
                return False
            await asyncio.sleep(wait)
    return reported


def left(deadline: float) -> float:
    """Seconds left until ``deadline`` (loop time), at least a little to try once more."""
    return max(deadline - asyncio.get_running_loop().time(), 0.1)
