"""Snapshots: one per user-role and collection day, written by upsert.

A re-run of the same collection (a retry, the same night sent again, fresh data later
that day) replaces the day's snapshot instead of adding one. A snapshot is ``complete``
when every source answered and ``partial`` otherwise, naming each missing source and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from analytics.models import COMPLETE, PARTIAL, Missing, Snapshot
from shared.db import Database
from shared.queue import NotFound


@dataclass(frozen=True, slots=True)
class BatchSnapshots:
    """What a batch's jobs wrote: partial snapshots, and per source how many miss it."""

    partial: int
    source_failures: dict[str, int]


async def write(
    db: Database, user_role_id: int, day: date, data: Mapping[str, Any],
    missing: Sequence[Missing], duration_ms: int, *, job_id: int | None = None,
    batch_id: int | None = None,
) -> bool:
    """Upsert the day's snapshot; False when the user-role does not exist (any more)."""
    status = PARTIAL if missing else COMPLETE
    row = await db.pool.fetchval(
        db.queries.upsert_snapshot, user_role_id, day, status, orjson.dumps(data).decode(),
        orjson.dumps([m.as_dict() for m in missing]).decode(), duration_ms, job_id, batch_id)
    return row is not None


async def latest(db: Database, user_role_id: int) -> Snapshot:
    """The user-role's most recent snapshot; ``NotFound`` when it has none."""
    row = await db.pool.fetchrow(db.queries.latest_snapshot, user_role_id)
    if row is None:
        raise NotFound("snapshot of user-role", user_role_id)
    return Snapshot.from_record(row)


async def of_batch(db: Database, batch_id: int) -> BatchSnapshots:
    row = await db.pool.fetchrow(db.queries.batch_snapshot_summary, batch_id)
    return BatchSnapshots(row["partial"], orjson.loads(row["source_failures"]))
