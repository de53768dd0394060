"""Signed session cookies for the dashboard, and the CSRF tokens bound to them.

A session is ``base64(payload).base64(hmac)``, the payload naming the API key it was
opened with (by name and a fingerprint of its secret), an expiry and a random nonce.
Nothing is stored on the server, so any API process with the same secret accepts it; a
key removed or changed in the settings ends its sessions at once (the fingerprint no
longer matches). The CSRF token is an HMAC of the nonce: a page of the session embeds it,
another site cannot read it, and every state-changing request of a session must carry it.

The signing secret is ``MS8_API_SESSION_SECRET``, or else derived from the API keys (so
that every process of a deployment agrees without more configuration).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

from api.config import ApiKey, ApiSettings

COOKIE = "ms8_session"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    key_name: str
    fingerprint: str
    expires: float
    nonce: str


class Sessions:
    """Issues and verifies session cookies and their CSRF tokens."""

    def __init__(self, settings: ApiSettings) -> None:
        if settings.session_secret is not None:
            secret = settings.session_secret.encode()
        elif settings.keys:
            material = "|".join(sorted(k.secret for k in settings.keys))
            secret = hashlib.sha256(f"ms8-jobs session|{material}".encode()).digest()
        else:
            secret = secrets.token_bytes(32)
        self._secret = secret
        self.max_age = int(settings.session_hours * 3600)

    def _sign(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"|" + data, hashlib.sha256).digest()

    def issue(self, key: ApiKey | None) -> str:
        payload = orjson.dumps({
            "n": key.name if key else "dev", "f": key.fingerprint if key else "",
            "e": int(time.time()) + self.max_age, "r": secrets.token_urlsafe(12),
        })
        return f"{_b64(payload)}.{_b64(self._sign('session', payload))}"

    def verify(self, cookie: str) -> Session | None:
        """The session of a cookie this API signed and that has not expired, or None."""
        try:
            payload_text, signature_text = cookie.split(".", 1)
            payload = _unb64(payload_text)
            signature = _unb64(signature_text)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._sign("session", payload)):
            return None
        try:
            data = orjson.loads(payload)
            session = Session(str(data["n"]), str(data["f"]), float(data["e"]), str(data["r"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        return session if session.expires > time.time() else None

    def csrf_token(self, session: Session) -> str:
        return _b64(self._sign("csrf", session.nonce.encode()))[:32]

    def check_csrf(self, session: Session, token: str | None) -> bool:
        # Bytes: compare_digest refuses a str with anything but ASCII in it.
        return token is not None and hmac.compare_digest(
            token.encode("utf-8", "replace"), self.csrf_token(session).encode())
