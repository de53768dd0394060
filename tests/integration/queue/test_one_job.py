"""Actions on one job: done, or refused with the job's state and the states that allow it."""

from __future__ import annotations

import pytest

from shared import queue
from shared.db import Database
from shared.queue import InvalidState, NotFound


async def test_each_action_acts_or_says_why_not(db: Database) -> None:
    waiting = await queue.send(db, "one")
    cancelled = await queue.cancel_job(db, waiting.id)
    assert cancelled.state == "cancelled"
    with pytest.raises(InvalidState, match=(
            f"cannot cancel job {waiting.id}: it is cancelled; "
            "only waiting or active jobs can be")):
        await queue.cancel_job(db, waiting.id)
    assert (await queue.retry_job(db, waiting.id)).state == "created"
    with pytest.raises(InvalidState, match="it is created; only failed or cancelled jobs can be"):
        await queue.retry_job(db, waiting.id)
    [active] = await queue.fetch(db, {"one": 1}, "w1")
    with pytest.raises(InvalidState, match="it is active; only waiting or finished "
                                           r"\(cancel an active job first\) jobs can be"):
        await queue.delete_job(db, active.id)
    assert (await queue.get_job(db, active.id)).state == "active"  # refused: nothing changed
    await queue.cancel_job(db, active.id)
    await queue.delete_job(db, active.id)
    for action in (queue.cancel_job, queue.retry_job, queue.delete_job):
        with pytest.raises(NotFound):
            await action(db, active.id)
