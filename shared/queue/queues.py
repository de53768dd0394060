"""Queues and their policies.

A queue's policy gives the defaults of its jobs (copied into each job when it is sent,
so a change applies to jobs sent afterwards), its retention of finished jobs, its
dead-letter queue, and an optional fleet-wide limit on active jobs. Queues are created on
first use with the default policy, or explicitly.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from shared.conn import Conn
from shared.db import Database
from shared.queue import validation as check
from shared.queue.errors import InvalidInput, NotFound
from shared.queue.models import QueuePolicy

DEFAULT_POLICY = QueuePolicy(
    name="", retry_limit=2, retry_delay_seconds=60.0, retry_backoff=True,
    retry_delay_max_seconds=3600.0, run_timeout_seconds=900.0, retention_seconds=7 * 86400.0,
    dead_letter=None, fleet_limit=None, paused=False, crash_limit=5,
)
_POLICY_FIELDS = tuple(
    f.name for f in fields(QueuePolicy) if f.name not in ("name", "created_at", "updated_at"))


def _checked(policy: QueuePolicy) -> QueuePolicy:
    check.queue_name(policy.name)
    check.retry_limit(policy.retry_limit)
    check.retry_delay(policy.retry_delay_seconds, "retry_delay_seconds")
    check.retry_delay(policy.retry_delay_max_seconds, "retry_delay_max_seconds")
    if not isinstance(policy.retry_backoff, bool):
        raise InvalidInput("retry_backoff", "must be true or false")
    check.optional(policy.run_timeout_seconds, check.run_timeout)
    check.seconds(policy.retention_seconds, "retention_seconds", 0, 10 * 366 * 86400)
    if policy.dead_letter is not None:
        check.queue_name(policy.dead_letter, "dead_letter")
        if policy.dead_letter == policy.name:
            raise InvalidInput("dead_letter", "a queue cannot be its own dead-letter queue")
    check.optional(policy.fleet_limit, lambda v: check.integer(v, "fleet_limit", 1, 100_000))
    if not isinstance(policy.paused, bool):
        raise InvalidInput("paused", "must be true or false")
    check.crash_limit(policy.crash_limit)
    return policy


def _args(policy: QueuePolicy) -> list[Any]:
    return [policy.name, *(getattr(policy, name) for name in _POLICY_FIELDS)]


def _unknown(changes: dict[str, Any]) -> None:
    unknown = sorted(set(changes) - set(_POLICY_FIELDS))
    if unknown:
        known = ", ".join(_POLICY_FIELDS)
        raise InvalidInput(unknown[0], f"is not a queue setting (known: {known})")


async def create_queue(db: Database, name: str, **policy: Any) -> QueuePolicy:
    """Create a queue with the given policy (defaults for the rest); if it exists, update it
    with the given settings instead."""
    async with db.pool.acquire() as conn, conn.transaction():
        row = await _insert(db, conn, name, policy)
        if row is None:
            return await _update(db, conn, name, policy)
    return QueuePolicy.from_record(row)


async def declare_queue(db: Database, name: str, **policy: Any) -> QueuePolicy:
    """Create a queue with the given policy unless it exists; an existing queue keeps its
    settings, so an application can declare the policy it wants before it sends while an
    operator's later change still wins. Returns the queue's policy as it now is."""
    async with db.pool.acquire() as conn, conn.transaction():
        row = await _insert(db, conn, name, policy)
        if row is None:
            row = await conn.fetchrow(db.queries.get_queue, name)
    return QueuePolicy.from_record(row)


async def _insert(
    db: Database, conn: Conn, name: str, policy: dict[str, Any],
) -> Any:
    """Insert the queue; no row when it exists."""
    _unknown(policy)
    wanted = _checked(replace(DEFAULT_POLICY, name=name, **policy))
    if wanted.dead_letter is not None:
        await conn.execute(db.queries.ensure_queues, [wanted.dead_letter])
    return await conn.fetchrow(db.queries.insert_queue, *_args(wanted))


async def update_queue(db: Database, name: str, **changes: Any) -> QueuePolicy:
    """Change some settings of an existing queue; the others keep their values."""
    _unknown(changes)
    check.queue_name(name)
    async with db.pool.acquire() as conn, conn.transaction():
        return await _update(db, conn, name, changes)


async def _update(
    db: Database, conn: Conn, name: str, changes: dict[str, Any],
) -> QueuePolicy:
    row = await conn.fetchrow(db.queries.get_queue_for_update, name)
    if row is None:
        raise NotFound("queue", name)
    wanted = _checked(replace(QueuePolicy.from_record(row), **changes))
    if wanted.dead_letter is not None and changes.get("dead_letter") is not None:
        await conn.execute(db.queries.ensure_queues, [wanted.dead_letter])
    updated = await conn.fetchrow(db.queries.update_queue, *_args(wanted))
    return QueuePolicy.from_record(updated)


async def get_queue(db: Database, name: str) -> QueuePolicy:
    row = await db.pool.fetchrow(db.queries.get_queue, check.queue_name(name))
    if row is None:
        raise NotFound("queue", name)
    return QueuePolicy.from_record(row)


async def list_queues(db: Database) -> list[QueuePolicy]:
    return [QueuePolicy.from_record(row) for row in await db.pool.fetch(db.queries.list_queues)]


async def pause_queue(db: Database, name: str) -> QueuePolicy:
    """Stop handing out the queue's jobs (running ones go on)."""
    return await _set_paused(db, name, True)


async def resume_queue(db: Database, name: str) -> QueuePolicy:
    """Hand out the queue's jobs again, and wake the workers."""
    return await _set_paused(db, name, False)


async def _set_paused(db: Database, name: str, paused: bool) -> QueuePolicy:
    row = await db.pool.fetchrow(db.queries.set_queue_paused, check.queue_name(name), paused)
    if row is None:
        raise NotFound("queue", name)
    return QueuePolicy.from_record(row)


async def redrive(db: Database, dead_letter_queue: str, limit: int = 1000) -> list[int]:
    """Send waiting dead letters back to the queues they failed in; returns their ids."""
    await get_queue(db, dead_letter_queue)
    rows = await db.pool.fetch(
        db.queries.redrive_jobs, check.queue_name(dead_letter_queue),
        check.integer(limit, "limit", 1, 100_000))
    return [row["id"] for row in rows]
