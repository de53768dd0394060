"""Settings of the API process, read from the environment once at start.

API keys come from ``MS8_API_KEYS`` as ``name:secret:scopes`` entries separated by ``;``
(scopes are ``read`` and ``write``, comma-separated; ``write`` implies ``read``):

    MS8_API_KEYS="ci:<32+ random characters>:read,write;grafana:<another secret>:read"

Invariants: names are unique, secrets are unique and at least 32 characters (16 in dev),
and no key at all is allowed only with ``MS8_ENV=dev`` (the process then says so loudly).
A bad value stops the process with an error naming the variable, never the secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from api.hosts import LOOPBACK, parse_allowed
from shared.settings import SettingsError, env_bool, env_float, env_int, env_str

SCOPES = ("read", "write")
_KEY_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MIN_SECRET_DEV = 16
MIN_SECRET = 32  # outside dev: 192 bits and more of a random token


@dataclass(frozen=True)
class ApiKey:
    """One client of the API: a name for logs and sessions, a secret, and its scopes."""

    name: str
    secret: str
    scopes: frozenset[str]

    def __repr__(self) -> str:  # never print the secret
        return f"ApiKey(name={self.name!r}, scopes={sorted(self.scopes)})"


def parse_keys(raw: str | None, variable: str = "MS8_API_KEYS", *, dev: bool = False
               ) -> tuple[ApiKey, ...]:
    if raw is None:
        return ()
    keys: list[ApiKey] = []
    for position, entry in enumerate((e.strip() for e in raw.split(";")), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) != 3:
            raise SettingsError(
                f"{variable} entry {position} must look like name:secret:read,write "
                f"(got {len(parts)} part(s) separated by ':')")
        name, secret, scope_text = (p.strip() for p in parts)
        if not _KEY_NAME.fullmatch(name):
            raise SettingsError(
                f"{variable} entry {position}: key name {name!r} must be 1-64 characters "
                "of letters, digits, '_', '.', '-'")
        shortest = _MIN_SECRET_DEV if dev else MIN_SECRET
        if len(secret) < shortest:
            raise SettingsError(
                f"{variable} key {name!r}: the secret must be at least {shortest} characters"
                f"{'' if dev else ' outside dev'} (make one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')")
        scopes = {s.strip() for s in scope_text.split(",") if s.strip()}
        unknown = sorted(scopes - set(SCOPES))
        if unknown or not scopes:
            raise SettingsError(
                f"{variable} key {name!r}: scopes must be read and/or write, got "
                f"{scope_text!r}")
        if "write" in scopes:
            scopes.add("read")
        if any(k.name == name for k in keys):
            raise SettingsError(f"{variable}: key name {name!r} is given twice")
        if any(k.secret == secret for k in keys):
            raise SettingsError(f"{variable} key {name!r}: its secret is also another key's")
        keys.append(ApiKey(name, secret, frozenset(scopes)))
    return tuple(keys)


@dataclass(frozen=True)
class ApiSettings:
    """What the API process needs beyond the shared settings."""

    host: str
    port: int
    keys: tuple[ApiKey, ...]
    metrics_token: str | None  # a scraper's credential: /metrics only
    session_secret: str | None
    session_hours: float
    secure_cookies: bool
    max_body_bytes: int
    max_jobs_per_request: int
    max_json_values: int
    sse_ping_seconds: float
    shutdown_grace_seconds: float
    max_header_bytes: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    # A worker seen in the registry this recently counts as serving its queues.
    worker_seen_seconds: float
    allowed_hosts: frozenset[str] | None  # None: any Host
    auth_failures_per_minute: float

    def __repr__(self) -> str:
        return (f"ApiSettings(host={self.host!r}, port={self.port}, keys={list(self.keys)}, "
                f"max_body_bytes={self.max_body_bytes})")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dev: bool | None = None
                 ) -> ApiSettings:
        env = os.environ if env is None else env
        if dev is None:
            dev = (env_str(env, "MS8_ENV", "dev") or "dev").lower() == "dev"
        keys = parse_keys(env_str(env, "MS8_API_KEYS"), dev=dev)
        if not keys and not dev:
            raise SettingsError(
                "MS8_API_KEYS must name at least one key (name:secret:read,write) unless "
                "MS8_ENV=dev")
        secret = env_str(env, "MS8_API_SESSION_SECRET")
        if secret is not None and len(secret) < 32:
            raise SettingsError("MS8_API_SESSION_SECRET must be at least 32 characters")
        metrics_token = env_str(env, "MS8_METRICS_TOKEN")
        if metrics_token is not None:
            shortest = _MIN_SECRET_DEV if dev else MIN_SECRET
            if len(metrics_token) < shortest:
                raise SettingsError(
                    f"MS8_METRICS_TOKEN must be at least {shortest} characters")
            if any(k.secret == metrics_token for k in keys):
                raise SettingsError("MS8_METRICS_TOKEN must differ from every API key")
        # A platform that gives PORT routes to the container from outside: listen there.
        default_host = "0.0.0.0" if not dev or env_str(env, "PORT") else "127.0.0.1"
        host = env_str(env, "MS8_API_HOST", default_host) or ""
        if not keys and env_str(env, "MS8_API_HOST") is None and host not in LOOPBACK:
            # A platform deploy that forgot MS8_ENV would otherwise serve anyone, keyless.
            raise SettingsError(
                f"the API would listen on {host} (PORT is set) without a key (MS8_ENV=dev, "
                "no MS8_API_KEYS), open to anyone who reaches it: set MS8_API_KEYS (and "
                "MS8_ENV=production on a platform), or MS8_API_HOST=127.0.0.1 to stay on "
                "this machine")
        return cls(
            host=host,
            port=env_int(env, "PORT", 8000, low=0, high=65535),
            keys=keys,
            metrics_token=metrics_token,
            session_secret=secret,
            session_hours=env_float(env, "MS8_API_SESSION_HOURS", 12.0, low=0.01, high=24 * 90),
            secure_cookies=env_bool(env, "MS8_API_SECURE_COOKIES", not dev),
            max_body_bytes=env_int(env, "MS8_API_MAX_BODY_BYTES", 4 * 1024 * 1024,
                                   low=1024, high=256 * 1024 * 1024),
            max_jobs_per_request=env_int(env, "MS8_API_MAX_JOBS_PER_REQUEST", 1000,
                                         low=1, high=100_000),
            max_json_values=env_int(env, "MS8_API_MAX_JSON_VALUES", 100_000,
                                    low=100, high=10_000_000),
            sse_ping_seconds=env_float(env, "MS8_API_SSE_PING_SECONDS", 15.0, low=0.05,
                                       high=300),
            shutdown_grace_seconds=env_float(env, "MS8_API_SHUTDOWN_GRACE_SECONDS", 10.0,
                                             low=0, high=600),
            max_header_bytes=env_int(env, "MS8_API_MAX_HEADER_BYTES", 64 * 1024,
                                     low=4096, high=1024 * 1024),
            header_timeout_seconds=env_float(env, "MS8_API_HEADER_TIMEOUT_SECONDS", 10.0,
                                             low=0.1, high=300),
            body_timeout_seconds=env_float(env, "MS8_API_BODY_TIMEOUT_SECONDS", 60.0,
                                           low=0.1, high=3600),
            worker_seen_seconds=env_float(env, "MS8_API_WORKER_SEEN_SECONDS", 180.0,
                                          low=1, high=30 * 86400),
            allowed_hosts=parse_allowed(env_str(env, "MS8_ALLOWED_HOSTS"), dev=dev,
                                        bind_host=host),
            auth_failures_per_minute=env_float(env, "MS8_API_AUTH_FAILURES_PER_MINUTE", 10.0,
                                               low=0.1, high=100_000),
        )
