"""The connection type the core's functions take: a direct one or one the pool lends.

asyncpg gives the two different classes with the same methods; callers hand either
(``conn=`` of a caller's transaction, or ``async with db.pool.acquire()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
else:
    Conn = asyncpg.Connection


def one(row: asyncpg.Record | None) -> asyncpg.Record:
    """The row of a statement that always returns one (an aggregate, an INSERT ...
    RETURNING): a missing one is a bug, said as such rather than as a TypeError later."""
    if row is None:
        raise RuntimeError("a statement that returns one row returned none")
    return row
