"""User-roles: the people analytics are collected for, one row per (user, role).

Seeding fills deterministic user-roles ``1..n`` for local stacks, tests and benchmarks.
It is set-based (one ``INSERT ... SELECT generate_series`` per chunk of 5,000: 30,000 in
under a second) and idempotent: the unique (user, role) key skips what exists, so
seeding 30,000 twice leaves 30,000.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analytics.models import UserRole
from shared.conn import one
from shared.db import Database
from shared.queue import InvalidInput, NotFound

SEED_CHUNK = 5000
MAX_SEED = 10_000_000


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    active: int


async def seed(
    db: Database, count: int, *, chunk: int = SEED_CHUNK,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Make sure user-roles 1..count exist; returns how many were new.

    ``on_progress(done, count)`` is called after each chunk (each its own transaction, so
    an interrupted seed keeps what it wrote and a re-run fills the rest)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_SEED:
        raise InvalidInput("user_roles", f"must be a whole number from 0 to {MAX_SEED}")
    inserted = 0
    for first in range(1, count + 1, chunk):
        last = min(first + chunk - 1, count)
        inserted += await db.pool.fetchval(db.queries.seed_user_roles, first, last)
        if on_progress is not None:
            on_progress(last, count)
    return inserted


async def count(db: Database) -> Counts:
    row = one(await db.pool.fetchrow(db.queries.count_user_roles))
    return Counts(row["total"], row["active"])


async def get(db: Database, user_role_id: int) -> UserRole:
    row = await db.pool.fetchrow(db.queries.get_user_role, user_role_id)
    if row is None:
        raise NotFound("user-role", user_role_id)
    return UserRole.from_record(row)
