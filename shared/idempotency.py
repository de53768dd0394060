"""Idempotency keys: the same request, sent twice with the same key, has one effect.

``once`` opens a transaction and claims the key. The first request with a key runs its
work on the claim's connection (so the jobs it sends commit together with the key) and
records its response; a later request with the same key and the same fingerprint gets
that response back without running anything; with a different fingerprint it is refused
(``KeyReused``). Keys are remembered for ``TTL_SECONDS`` (a day) and then may be reused.

Invariants: a key is stored only together with the effects of its first request (one
transaction), and a key whose request failed is not stored at all, so a retry can succeed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from shared.conn import Conn, one
from shared.db import Database

TTL_SECONDS = 86400.0


class KeyReused(Exception):
    """The key was used within the TTL for a request with another fingerprint."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.key = key


@dataclass(frozen=True, slots=True)
class Stored:
    """The response recorded for a key: its HTTP-like status and its JSON text."""

    status: int
    body_json: str


class Claim:
    """Inside ``once``: either ``replay`` is set (answer with it), or do the work on
    ``conn`` and ``record`` the response."""

    def __init__(self, conn: Conn, replay: Stored | None) -> None:
        self.conn = conn
        self.replay = replay
        self.recorded: Stored | None = None

    def record(self, status: int, body_json: str) -> None:
        self.recorded = Stored(status, body_json)


@asynccontextmanager
async def once(db: Database, principal: str, key: str, fingerprint: str, *,
               ttl_seconds: float = TTL_SECONDS) -> AsyncIterator[Claim]:
    """Claim ``key`` of ``principal`` for a request with ``fingerprint`` (see the module)."""
    async with db.pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(db.queries.claim_idempotency_key, principal, key, fingerprint,
                               ttl_seconds):
            claim = Claim(conn, None)
            yield claim
            if claim.recorded is None:
                raise RuntimeError(f"idempotency key {key!r}: the work recorded no response")
            await conn.execute(db.queries.store_idempotency_response, principal, key,
                               claim.recorded.status, claim.recorded.body_json)
            return
        row = one(await conn.fetchrow(db.queries.get_idempotency_key, principal, key))
        if row["fingerprint"] != fingerprint:
            raise KeyReused(key)
        yield Claim(conn, Stored(row["status"], row["response"]))


async def delete_expired(db: Database, *, ttl_seconds: float = TTL_SECONDS,
                         chunk: int = 1000) -> int:
    """Forget expired keys in chunks of ``chunk``; returns how many were deleted."""
    deleted = 0
    while True:
        rows = await db.pool.fetch(db.queries.delete_expired_idempotency_keys,
                                   ttl_seconds, chunk)
        deleted += len(rows)
        if len(rows) < chunk:
            return deleted
