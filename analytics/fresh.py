"""Fresh data on demand: one ``fresh-data`` job per user-role at a time, ahead of the batch.

A person asks from the dashboard (or a service over the API) and watches the job. Three
things make it fit that use:

- one job per user-role while it waits or runs: the singleton key ``fresh-data:<id>``
  makes a second request return the job already there (``Sent.created`` is False);
- it never waits behind the night: it has a queue of its own, whose slots in a worker are
  its own (a fetch claims for each queue up to its free slots, so 30,000 waiting
  collect-analytics jobs take none of them), and its priority is above the batch's, so
  it also runs first among the collections on a source's limit (``collect``);
- its run may last: the queue's run timeout is 30 minutes (the seed's "~25 minutes"),
  and the handler extends it while a source is still answering.

The day is fixed when the request is made, so a retry after midnight overwrites the
snapshot it was asked for instead of writing another day's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from analytics import fanout, user_roles
from shared import queue
from shared.db import Database

FRESH_QUEUE = "fresh-data"
# Above the nightly jobs (sent at the default, 0).
PRIORITY = 100
# Retries as collect-analytics (a run whose every source failed); a longer run.
POLICY = {**fanout.QUEUE_POLICIES[fanout.COLLECT_QUEUE], "run_timeout_seconds": 1800.0}


def singleton_key(user_role_id: int) -> str:
    return f"{FRESH_QUEUE}:{user_role_id}"


def today() -> date:
    return datetime.now(UTC).date()


async def request(db: Database, user_role_id: int, *, day: date | None = None) -> queue.Sent:
    """Send the user-role's fresh-data job, or return the one waiting or running.

    ``NotFound`` when the user-role does not exist (nothing is sent)."""
    await user_roles.get(db, user_role_id)
    await queue.declare_queue(db, FRESH_QUEUE, **POLICY)
    day = day or today()
    return await queue.send(
        db, FRESH_QUEUE, {"user_role_id": user_role_id, "day": day.isoformat()},
        priority=PRIORITY, singleton_key=singleton_key(user_role_id))
