"""The domain's data: seeding user-roles, snapshots written by upsert, nightly runs read back."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from analytics import runs, snapshots, user_roles
from analytics.models import Missing
from shared.db import Database
from shared.queue import InvalidInput, NotFound


async def test_seeding_is_set_based_idempotent_and_reports_progress(db: Database) -> None:
    seen: list[tuple[int, int]] = []
    assert await user_roles.seed(db, 12, chunk=5, on_progress=lambda *p: seen.append(p)) == 12
    assert seen == [(5, 12), (10, 12), (12, 12)]
    assert await user_roles.seed(db, 15, chunk=5) == 3
    assert await user_roles.count(db) == user_roles.Counts(total=15, active=15)
    first = await user_roles.get(db, 1)
    assert (first.user_id, first.role_id, first.active) == ("user-1", "instructor", True)
    with pytest.raises(NotFound):
        await user_roles.get(db, 16)
    with pytest.raises(InvalidInput):
        await user_roles.seed(db, -1)


async def test_a_second_write_of_the_same_day_replaces_the_snapshot(db: Database) -> None:
    await user_roles.seed(db, 2)
    day = date(2026, 3, 1)
    assert await snapshots.write(db, 1, day, {"a": {"x": 1}}, [Missing("b", "timeout")], 12,
                                 job_id=7, batch_id=3)
    assert await snapshots.write(db, 1, day, {"a": {"x": 2}, "b": {"y": 1}}, [], 9, job_id=8)
    latest = await snapshots.latest(db, 1)
    assert (latest.day, latest.status, latest.data, latest.missing) == (
        day, "complete", {"a": {"x": 2}, "b": {"y": 1}}, ())
    assert (latest.duration_ms, latest.job_id, latest.batch_id) == (9, 8, None)
    rows = await db.pool.fetchval(f'SELECT count(*) FROM "{db.schema}_analytics".snapshots')
    assert rows == 1


async def test_snapshots_written_at_the_same_time_share_one_statement(db: Database) -> None:
    """Thirty concurrent writes: fewer groups than writes, each caller told whether its
    user-role exists, and two writes of one user-role's day leave the later one."""
    await user_roles.seed(db, 20)
    day = date(2026, 3, 1)
    writer = snapshots.SnapshotWriter(db)

    def row(uid: int, job_id: int) -> snapshots.SnapshotRow:
        missing = [Missing("b", "timeout")] if uid % 2 else []
        return snapshots.SnapshotRow(uid, day, {"a": {"uid": uid}}, missing, uid, job_id)

    rows = [row(uid, uid) for uid in range(1, 26)] + [row(3, 1000), row(4, 1001)]
    written = await asyncio.gather(*(writer.write(r) for r in rows))
    await writer.close()
    assert written == [uid <= 20 for uid in range(1, 26)] + [True, True]
    assert writer.groups_sent < len(rows)
    stored = await db.pool.fetch(
        f'SELECT user_role_id, status, job_id FROM "{db.schema}_analytics".snapshots '
        "ORDER BY user_role_id")
    assert [(r["user_role_id"], r["status"], r["job_id"]) for r in stored] == [
        (uid, "partial" if uid % 2 else "complete", {3: 1000, 4: 1001}.get(uid, uid))
        for uid in range(1, 21)]


async def test_the_latest_snapshot_is_the_latest_day(db: Database) -> None:
    await user_roles.seed(db, 1)
    await snapshots.write(db, 1, date(2026, 3, 2), {}, [Missing("a", "http 503")], 1)
    await snapshots.write(db, 1, date(2026, 3, 1), {"a": {}}, [], 1)
    latest = await snapshots.latest(db, 1)
    assert (latest.day, latest.status, latest.missing) == (
        date(2026, 3, 2), "partial", (Missing("a", "http 503"),))
    with pytest.raises(NotFound):
        await snapshots.latest(db, 2)


async def test_no_snapshot_is_written_for_an_unknown_user_role(db: Database) -> None:
    assert not await snapshots.write(db, 404, date(2026, 3, 1), {"a": {}}, [], 1)


async def test_a_batch_counts_its_partial_snapshots_and_missing_sources(db: Database) -> None:
    await user_roles.seed(db, 4)
    day = date(2026, 3, 1)
    await snapshots.write(db, 1, day, {"a": {}}, [Missing("b", "timeout"),
                                                  Missing("c", "circuit open")], 1, batch_id=5)
    await snapshots.write(db, 2, day, {"a": {}, "c": {}}, [Missing("b", "http 503")], 1,
                          batch_id=5)
    await snapshots.write(db, 3, day, {"a": {}, "b": {}, "c": {}}, [], 1, batch_id=5)
    await snapshots.write(db, 4, day, {}, [Missing("a", "timeout")], 1, batch_id=6)
    summary = await snapshots.of_batch(db, 5)
    assert (summary.partial, summary.source_failures) == (2, {"b": 2, "c": 1})
    assert await snapshots.of_batch(db, 99) == snapshots.BatchSnapshots(0, {})


async def test_nightly_runs_are_read_latest_night_first(db: Database) -> None:
    for night in ("2026-03-01", "2026-03-03", "2026-03-02"):
        await db.pool.execute(db.queries.open_nightly_run, date.fromisoformat(night), None, None)
    listed = await runs.list_runs(db, limit=2)
    assert [r.night for r in listed] == [date(2026, 3, 3), date(2026, 3, 2)]
    older = await runs.list_runs(db, before=listed[-1].night)
    assert [r.night for r in older] == [date(2026, 3, 1)]
    run = await runs.get(db, date(2026, 3, 1))
    assert (run.state, run.sent, run.batch_id, run.source_failures) == (
        "fanning-out", 0, None, None)
    with pytest.raises(NotFound):
        await runs.get(db, date(2026, 1, 1))
    with pytest.raises(InvalidInput):
        await runs.list_runs(db, limit=0)
