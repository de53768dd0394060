"""Signed session cookies for the dashboard, the CSRF tokens bound to them, and logout.

A session is ``base64(payload).base64(hmac)``: the payload names the API key it was
opened with, an expiry and a random session id, and nothing derived from the key's
secret. It is signed with a key of that API key's own, derived from its secret by PBKDF2
(salted with the key's name, once at start) and from ``MS8_API_SESSION_SECRET`` when set:
a changed or removed key ends its sessions, and a leaked cookie gives an offline guesser
100,000 hash rounds per guess of a secret of 32 characters or more, where there used to be
a plain digest. The CSRF token is an HMAC of the session id with the same key.

Logging out revokes the session id on every API process of the deployment, until the
session would have expired anyway (``api/revocations.py``: a shared table, mirrored in
each process's memory, so verifying a cookie still costs no query).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

from api.config import ApiKey, ApiSettings
from api.revocations import Revocations
from shared.db import Database

COOKIE = "ms8_session"
DEV_NAME = "dev"
MAX_COOKIE = 1024
PBKDF2_ROUNDS = 100_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.cache
def _stretched(name: str, secret: str) -> bytes:
    """The slow part of a key's session key: once per key and process."""
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), f"ms8-jobs session|{name}".encode(),
                               PBKDF2_ROUNDS)


@dataclass(frozen=True)
class Session:
    key_name: str
    expires: float
    nonce: str  # the session id


class Sessions:
    """Issues, verifies and revokes session cookies and their CSRF tokens."""

    def __init__(self, settings: ApiSettings) -> None:
        if settings.session_secret is not None:
            master = settings.session_secret.encode()
        elif settings.keys:
            master = b"ms8-jobs sessions"  # the keys' secrets are the secret part
        else:
            master = secrets.token_bytes(32)  # dev: sessions of this process only
        self._signing = {
            key.name: hmac.new(master, _stretched(key.name, key.secret), "sha256").digest()
            for key in settings.keys}
        if not settings.keys:
            self._signing[DEV_NAME] = hmac.new(master, b"dev", "sha256").digest()
        self.revoked = Revocations()
        self.max_age = int(settings.session_hours * 3600)

    def _sign(self, key_name: str, purpose: str, data: bytes) -> bytes | None:
        signing = self._signing.get(key_name)
        if signing is None:
            return None
        return hmac.new(signing, purpose.encode() + b"|" + data, hashlib.sha256).digest()

    def issue(self, key: ApiKey | None) -> str:
        name = key.name if key else DEV_NAME
        payload = orjson.dumps({"n": name, "e": int(time.time()) + self.max_age,
                                "r": secrets.token_urlsafe(16)})
        signature = self._sign(name, "session", payload)
        assert signature is not None, f"no session key for {name!r}"
        return f"{_b64(payload)}.{_b64(signature)}"

    def verify(self, cookie: str) -> Session | None:
        """The session of a cookie this API signed, not expired nor revoked, or None."""
        if len(cookie) > MAX_COOKIE:
            return None
        try:
            payload_text, signature_text = cookie.split(".", 1)
            payload = _unb64(payload_text)
            signature = _unb64(signature_text)
            data = orjson.loads(payload)
            session = Session(str(data["n"]), float(data["e"]), str(data["r"]))
        except (ValueError, KeyError, TypeError):  # JSONDecodeError is a ValueError
            return None
        expected = self._sign(session.key_name, "session", payload)
        if expected is None or not hmac.compare_digest(signature, expected):
            return None
        if session.expires <= time.time() or session.nonce in self.revoked:
            return None
        return session

    async def revoke(self, db: Database, session: Session) -> None:
        """Log ``session`` out on every API process; raises when the database cannot be
        told (then nothing was revoked)."""
        await self.revoked.revoke(db, session.nonce, session.expires)

    def csrf_token(self, session: Session) -> str:
        signature = self._sign(session.key_name, "csrf", session.nonce.encode())
        assert signature is not None, "a verified session has a key"
        return _b64(signature)[:32]

    def check_csrf(self, session: Session, token: str | None) -> bool:
        # Bytes: compare_digest refuses a str with anything but ASCII in it.
        return token is not None and hmac.compare_digest(
            token.encode("utf-8", "replace"), self.csrf_token(session).encode())
