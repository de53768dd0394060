"""Schedules in the core: the seed, saving, validation, notifications, listing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared import queue
from shared.db import Database
from shared.queue import InvalidInput, InvalidState, NotFound
from tests.integration.scheduler.conftest import ScheduleNotices
from tests.support import wait_until


async def count_schedules(db: Database) -> int:
    return await db.pool.fetchval(f'SELECT count(*) FROM "{db.schema}".schedules')


async def test_the_nightly_batch_is_seeded_at_two_utc(db: Database) -> None:
    seed = await queue.get_schedule(db, "daily-batch")
    assert (seed.cron, seed.timezone, seed.queue, seed.enabled) == (
        "0 2 * * *", "UTC", "daily-batch", True)
    now = datetime(2030, 6, 1, 13, 0, tzinfo=UTC)
    assert seed.next_fire(now) == datetime(2030, 6, 2, 2, 0, tzinfo=UTC)
    assert seed.last_firing is None
    firing = await queue.run_now(db, "daily-batch")  # its queue is created on first use
    assert (await queue.get_job(db, firing.job_id)).queue == "daily-batch"
    assert (await queue.get_queue(db, "daily-batch")).retry_limit == 2


async def test_create_saves_creates_the_queue_and_notifies(
    db: Database, schedule_notices: ScheduleNotices,
) -> None:
    created = await queue.create_schedule(
        db, "reports", "*/10  * * * * *", queue="report-queue", timezone="Europe/Berlin",
        data={"kind": "weekly"}, options={"priority": 5, "retry_limit": 1})
    assert (created.cron, created.timezone, created.data, created.options) == (
        "*/10 * * * * *", "Europe/Berlin", {"kind": "weekly"}, {"priority": 5, "retry_limit": 1})
    assert (await queue.get_queue(db, "report-queue")).retry_limit == 2  # default policy
    await wait_until(lambda: "reports" in schedule_notices.names, message="create notice")
    with pytest.raises(InvalidState, match="'reports' already exists"):
        await queue.create_schedule(db, "reports", "* * * * *", queue="x")


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"cron": "61 * * * *"}, "cron", "minute field '61'"),
        ({"cron": "* * *"}, "cron", "has 3 fields"),
        ({"timezone": "Mars/Olympus"}, "timezone", "'Mars/Olympus' is unknown"),
        ({"queue": "Bad Queue"}, "queue", "'Bad Queue' is not a queue name"),
        ({"name": "no spaces"}, "name", "'no spaces' is not"),
        ({"options": {"priority": 5000}}, "priority", "between -1000 and 1000"),
        ({"options": {"colour": "red"}}, "options", "'colour' is not a job option"),
        ({"options": {"start_after": "2030-01-01"}}, "options", "'start_after' is not"),
        ({"options": "fast"}, "options", "must be an object"),
        ({"data": {1, 2}}, "data", "not JSON-serialisable"),
        ({"enabled": "yes"}, "enabled", "true or false"),
    ],
)
async def test_bad_input_names_the_field_and_saves_nothing(
    db: Database, kwargs: dict, field: str, words: str,
) -> None:
    args = {"name": "bad", "cron": "0 * * * *", "queue": "q", "timezone": "UTC", **kwargs}
    before = await count_schedules(db)
    with pytest.raises(InvalidInput) as error:
        await queue.create_schedule(db, args.pop("name"), args.pop("cron"), **args)
    assert error.value.field == field
    assert words in str(error.value)
    assert await count_schedules(db) == before


async def test_update_replaces_fields_and_rearms_only_on_a_new_time(
    db: Database, schedule_notices: ScheduleNotices,
) -> None:
    first = await queue.create_schedule(db, "s", "0 * * * *", queue="q")
    data_only = await queue.update_schedule(db, "s", data={"v": 2}, options={"priority": 1})
    assert (data_only.data, data_only.options, data_only.armed_at) == (
        {"v": 2}, {"priority": 1}, first.armed_at)
    new_time = await queue.update_schedule(db, "s", cron="30 * * * *", queue="other")
    assert new_time.armed_at > first.armed_at
    assert (new_time.cron, new_time.queue, new_time.data) == ("30 * * * *", "other", {"v": 2})
    disabled = await queue.disable_schedule(db, "s")
    assert not disabled.enabled and disabled.armed_at == new_time.armed_at
    assert disabled.next_fire() is None
    enabled = await queue.enable_schedule(db, "s")
    assert enabled.enabled and enabled.armed_at > new_time.armed_at
    await wait_until(lambda: schedule_notices.names.count("s") >= 5, message="5 notices")


async def test_a_bad_update_changes_nothing(db: Database) -> None:
    await queue.create_schedule(db, "s", "0 * * * *", queue="q", timezone="Asia/Tokyo")
    before = await queue.get_schedule(db, "s")
    with pytest.raises(InvalidInput) as error:
        await queue.update_schedule(db, "s", cron="0 * * * * * *", data={"v": 1})
    assert error.value.field == "cron"
    with pytest.raises(InvalidInput) as error:
        await queue.update_schedule(db, "s", timezone="Nowhere/City")
    assert error.value.field == "timezone"
    with pytest.raises(InvalidInput, match="not a schedule setting"):
        await queue.update_schedule(db, "s", armed_at=datetime.now(UTC))
    assert await queue.get_schedule(db, "s") == before
    with pytest.raises(NotFound):
        await queue.update_schedule(db, "missing", cron="* * * * *")


async def test_delete_notifies_and_takes_the_firings_along(
    db: Database, schedule_notices: ScheduleNotices,
) -> None:
    await queue.create_schedule(db, "gone", "* * * * *", queue="q")
    firing = await queue.run_now(db, "gone")
    await queue.delete_schedule(db, "gone")
    await wait_until(lambda: schedule_notices.names.count("gone") == 2, message="2 notices")
    assert await db.pool.fetchval(
        f'SELECT count(*) FROM "{db.schema}".firings WHERE id = $1', firing.id) == 0
    assert (await queue.get_job(db, firing.job_id)).queue == "q"  # the job stays
    with pytest.raises(NotFound, match="schedule 'gone' does not exist"):
        await queue.delete_schedule(db, "gone")


async def test_list_shows_next_and_last_firing(db: Database) -> None:
    await queue.create_schedule(db, "a-hourly", "0 * * * *", queue="q")
    manual = await queue.run_now(db, "a-hourly")
    listed = {s.name: s for s in await queue.list_schedules(db)}
    assert sorted(listed) == ["a-hourly", "daily-batch"]
    last = listed["a-hourly"].last_firing
    assert last is not None and (last.kind, last.job_id, last.job_created) == (
        "manual", manual.job_id, True)
    now = datetime.now(UTC)
    next_fire = listed["a-hourly"].next_fire(now)
    assert next_fire is not None and next_fire > now and next_fire.minute == 0
    assert await queue.list_firings(db, "a-hourly") == [manual]
