"""Settings read from the environment once, at start, into frozen dataclasses.

A bad value stops the process with an error that names the variable; nothing starts
half-configured. Each process adds its own settings next to these (see ``env_*``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from shared import dburl, numerals
from shared.sql import SCHEMA_NAME

N = TypeVar("N", int, float)


class SettingsError(ValueError):
    """An environment variable is missing or malformed; the message names it."""


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_int(
    env: Mapping[str, str], name: str, default: int, *, low: int | None = None,
    high: int | None = None,
) -> int:
    raw = env_str(env, name)
    if raw is None:
        return default
    try:
        value = _signed(raw, numerals.whole)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    return _in_range(name, value, low, high)


def env_float(
    env: Mapping[str, str], name: str, default: float, *, low: float | None = None,
    high: float | None = None,
) -> float:
    raw = env_str(env, name)
    if raw is None:
        return default
    try:
        value = _signed(raw, numerals.decimal)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    return _in_range(name, value, low, high)


def _signed(raw: str, read: Callable[[str], N]) -> N:
    """A number in ASCII digits, with a minus sign where the range allows one (``int()``
    and ``float()`` would also take ``"٣٠"``, ``"1_000"``, ``"+5"`` or ``"1e3"``)."""
    return -read(raw[1:]) if raw.startswith("-") else read(raw)


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env_str(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env_str(env, name, default)
    assert raw is not None
    if raw.lower() not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.lower()


def env_list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env_str(env, name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _in_range(name: str, value: N, low: N | None, high: N | None) -> N:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        raise SettingsError(f"{name} must be {bounds}, got {value}")
    return value


def check_database_url(name: str, url: str) -> str:
    """The URL in the canonical form asyncpg reads as libpq would (see ``shared.dburl``)."""
    try:
        return dburl.parse(url, name).dsn
    except dburl.DatabaseUrlError as error:
        raise SettingsError(str(error)) from None


# Jobs sent to an embedded server inside a container vanish with it on the next deploy.
MISSING_DATABASE_URL = (
    "DATABASE_URL is not set: outside MS8_ENV=dev a process never starts the embedded "
    "PostgreSQL (its jobs would vanish with the container); set DATABASE_URL to your "
    "database, or MS8_ENV=dev for a local stack")


@dataclass(frozen=True)
class Settings:
    """What every process needs: where the database is, and how to log."""

    database_url: str | None
    direct_url: str | None
    schema: str
    pool_min: int
    pool_max: int
    statement_cache: bool
    connect_timeout: float
    auto_migrate: bool
    env: str
    log_level: str
    log_format: str
    data_dir: str

    @property
    def dev(self) -> bool:
        return self.env == "dev"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        url = env_str(env, "DATABASE_URL")
        if url is not None:
            url = check_database_url("DATABASE_URL", url)
        direct = env_str(env, "DATABASE_DIRECT_URL")
        if direct is not None:
            direct = check_database_url("DATABASE_DIRECT_URL", direct)
        environment = env_choice(env, "MS8_ENV", "dev", ("dev", "production"))
        if url is None and environment != "dev":
            raise SettingsError(MISSING_DATABASE_URL)
        schema = env_str(env, "MS8_SCHEMA", "ms8jobs")
        assert schema is not None
        if not SCHEMA_NAME.fullmatch(schema):
            raise SettingsError(
                f"MS8_SCHEMA must be lower-case letters, digits and underscores "
                f"(at most 40, not starting with a digit), got {schema!r}"
            )
        pool_min = env_int(env, "MS8_POOL_MIN", 1, low=0, high=100)
        pool_max = env_int(env, "MS8_POOL_MAX", 10, low=1, high=500)
        if pool_max < pool_min:
            raise SettingsError(
                f"MS8_POOL_MAX ({pool_max}) must not be below MS8_POOL_MIN ({pool_min})")
        return cls(
            database_url=url,
            direct_url=direct,
            schema=schema,
            pool_min=pool_min,
            pool_max=pool_max,
            # PgBouncer in transaction mode cannot keep prepared statements across queries.
            statement_cache=not env_bool(env, "MS8_PGBOUNCER", False),
            connect_timeout=env_float(env, "MS8_CONNECT_TIMEOUT", 10.0, low=0.1, high=300),
            # In production only the release step migrates: a new replica starting in a
            # rolling deploy must not change the schema under the old ones.
            auto_migrate=env_bool(env, "MS8_AUTO_MIGRATE", environment != "production"),
            env=environment,
            log_level=env_choice(
                env, "MS8_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            log_format=env_choice(env, "MS8_LOG_FORMAT", "auto", ("auto", "json", "console")),
            data_dir=env_str(env, "MS8_DATA_DIR", ".data") or ".data",
        )
