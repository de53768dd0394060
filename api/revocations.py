"""Logged-out sessions, the same on every API process of a deployment.

A session cookie is verified without the database (its signature and expiry, see
``api/session.py``), so a logout must reach every process that may be shown a copy of
it. Logging out writes the session id to ``revoked_sessions``, until the session would
have expired anyway, and notifies the ``sessions`` channel in the same statement. Every
API process keeps the live ids in memory, so that checking a cookie costs no query:

    logout ──► row + NOTIFY (one statement) ──commit──► every hub hears it ──► refused
                                                        (milliseconds)
    hub (re)LISTENs ──► read every live row ──► refused as well

The serving process refuses the session the moment the row is committed; the others a
notification's delivery later. A process reads the table whenever its listener connects
(at start, and after every reconnect), after LISTEN, so a logout committed while it was
deaf is not missed. A logout that cannot reach the database raises, and the caller keeps
the session (nothing was revoked anywhere, so the person can try again).
"""

from __future__ import annotations

import time
from typing import Any

from shared.db import Database


class Revocations:
    """The session ids logged out and not yet expired, as this process knows them."""

    def __init__(self) -> None:
        self._ids: dict[str, float] = {}  # session id -> when it expires (epoch seconds)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, session_id: str, expires: float) -> None:
        """Refuse ``session_id`` until ``expires``; forget the ids that have expired (a
        cookie past its expiry is refused for its age anyway)."""
        now = time.time()
        self._ids = {i: e for i, e in self._ids.items() if e > now}  # logouts are rare
        if expires > now:
            self._ids[session_id] = expires

    def heard(self, payload: dict[str, Any]) -> None:
        """A ``sessions`` notification: another process (or this one) logged one out."""
        session_id, expires = payload.get("id"), payload.get("expires")
        if isinstance(session_id, str) and isinstance(expires, int | float):
            self.add(session_id, float(expires))

    async def load(self, db: Database) -> None:
        """Read every live revocation (when the listener has just connected)."""
        rows = await db.pool.fetch(db.queries.revoked_sessions)
        now = time.time()
        self._ids = {**{i: e for i, e in self._ids.items() if e > now},
                     **{row["id"]: row["expires"] for row in rows}}

    async def revoke(self, db: Database, session_id: str, expires: float) -> None:
        """Log the session out on every process; raises when the database cannot say so."""
        await db.pool.execute(db.queries.revoke_session, session_id, expires)
        self.add(session_id, expires)
