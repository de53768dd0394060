"""The API's keys: found by a digest of the secret, never compared by ==."""

from __future__ import annotations

import hashlib
import hmac

from api.config import ApiKey
from api.session import Session


class KeyRing:
    """The configured keys, found by a digest of the secret (no secret compared by ==)."""

    def __init__(self, keys: tuple[ApiKey, ...], metrics_token: str | None = None) -> None:
        self.keys = keys
        self._by_digest = {self._digest(k.secret): k for k in keys}
        self._by_name = {k.name: k for k in keys}
        self._metrics_token = metrics_token

    @staticmethod
    def _digest(secret: str) -> bytes:
        return hashlib.sha256(secret.encode()).digest()

    @property
    def open(self) -> bool:
        """No key configured: dev mode, everyone may do everything."""
        return not self.keys

    def find(self, secret: str) -> ApiKey | None:
        key = self._by_digest.get(self._digest(secret))
        if key is None or not hmac.compare_digest(key.secret.encode(), secret.encode()):
            return None
        return key

    def is_metrics_token(self, secret: str) -> bool:
        token = self._metrics_token
        return token is not None and hmac.compare_digest(token.encode(), secret.encode())

    def for_session(self, session: Session) -> ApiKey | None:
        """The key of a verified session (its signature was made with that key's secret)."""
        return self._by_name.get(session.key_name)
