"""Snapshots: one per user-role and collection day, written by upsert.

A re-run of the same collection (a retry, the same night sent again, fresh data later
that day) replaces the day's snapshot instead of adding one. A snapshot is ``complete``
when every source answered and ``partial`` otherwise, naming each missing source and why.

A worker runs a hundred collections at once and a night is 30,000 of them: a
``SnapshotWriter`` writes the snapshots of the collections that end together with one
statement and one commit instead of one each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from analytics.models import COMPLETE, PARTIAL, Missing, Snapshot
from shared.coalesce import Coalescer
from shared.conn import one
from shared.db import Database
from shared.queue import NotFound


@dataclass(frozen=True, slots=True)
class BatchSnapshots:
    """What a batch's jobs wrote: partial snapshots, and per source how many miss it."""

    partial: int
    source_failures: dict[str, int]


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """One snapshot to write (see ``write``)."""

    user_role_id: int
    day: date
    data: Mapping[str, Any]
    missing: Sequence[Missing]
    duration_ms: int
    job_id: int | None = None
    batch_id: int | None = None


class SnapshotWriter(Coalescer[SnapshotRow, bool]):
    """``write`` for concurrent callers: the rows written at the same time share one
    upsert and its commit. Each caller learns whether its user-role exists; when a group
    fails, every caller in it gets the error and none of its rows was written."""

    def __init__(self, db: Database, *, max_flushes: int = 2, max_group: int = 200) -> None:
        super().__init__(self._write_group, max_flushes=max_flushes, max_group=max_group)
        self.db = db

    async def write(self, row: SnapshotRow) -> bool:
        return await self.submit(row)

    async def _write_group(self, rows: list[SnapshotRow]) -> list[bool]:
        return await upsert(self.db, rows)


async def write(
    db: Database, user_role_id: int, day: date, data: Mapping[str, Any],
    missing: Sequence[Missing], duration_ms: int, *, job_id: int | None = None,
    batch_id: int | None = None,
) -> bool:
    """Upsert the day's snapshot; False when the user-role does not exist (any more)."""
    row = SnapshotRow(user_role_id, day, data, missing, duration_ms, job_id, batch_id)
    return (await upsert(db, [row]))[0]


async def upsert(db: Database, rows: Sequence[SnapshotRow]) -> list[bool]:
    """Upsert the rows in one statement; per row, whether its user-role exists.

    One statement cannot upsert a row twice: of two writes of one user-role's day the
    later wins, as it would one after the other."""
    latest = {(row.user_role_id, row.day): row for row in rows}
    chosen = list(latest.values())
    written = {(r["user_role_id"], r["day"]) for r in await db.pool.fetch(
        db.queries.upsert_snapshots,
        [row.user_role_id for row in chosen], [row.day for row in chosen],
        [PARTIAL if row.missing else COMPLETE for row in chosen],
        [orjson.dumps(row.data).decode() for row in chosen],
        [orjson.dumps([m.as_dict() for m in row.missing]).decode() for row in chosen],
        [row.duration_ms for row in chosen], [row.job_id for row in chosen],
        [row.batch_id for row in chosen])}
    return [(row.user_role_id, row.day) in written for row in rows]


async def latest(db: Database, user_role_id: int) -> Snapshot:
    """The user-role's most recent snapshot; ``NotFound`` when it has none."""
    row = await db.pool.fetchrow(db.queries.latest_snapshot, user_role_id)
    if row is None:
        raise NotFound("snapshot of user-role", user_role_id)
    return Snapshot.from_record(row)


async def of_batch(db: Database, batch_id: int) -> BatchSnapshots:
    row = one(await db.pool.fetchrow(db.queries.batch_snapshot_summary, batch_id))
    return BatchSnapshots(row["partial"], orjson.loads(row["source_failures"]))
