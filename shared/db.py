"""Connections: a pool for queries, direct session connections for LISTEN and locks.

Queries go through the pool, which may sit behind PgBouncer in transaction mode. LISTEN
and session advisory locks need a real session, so they use direct connections to
``DATABASE_DIRECT_URL`` (default: ``DATABASE_URL``). With no ``DATABASE_URL`` at all, an
embedded PostgreSQL under ``.data/`` is started (or adopted) and used.

No connection here decodes JSON: the queue core encodes and decodes job data itself, so
that it works the same on any connection a caller hands it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import asyncpg

from shared import dburl
from shared.backoff import Backoff
from shared.channels import Channels
from shared.conn import Conn
from shared.logging import get_logger, mask_secrets
from shared.outage import PROBE_CAP, PROBE_FIRST, Outage, QuietPoolFloor
from shared.settings import MISSING_DATABASE_URL, Settings, SettingsError
from shared.sql import Queries

log = get_logger(__name__)
T = TypeVar("T")

# Errors that mean "the database is not reachable right now", as opposed to a bad query.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.TooManyConnectionsError,
    # A backend terminated while idle leaves its connection mid-way (an error read, the
    # close not seen yet) for a moment; a statement sent then fails with this.
    asyncpg.exceptions._base.InternalClientError,
)


def resolve_urls(settings: Settings) -> tuple[str, str]:
    """The pool URL and the direct URL; starts the embedded server when no URL is set."""
    if settings.database_url is None:
        if not settings.dev:  # Settings.from_env refuses this; a hand-built one may not
            raise SettingsError(MISSING_DATABASE_URL)
        url = embedded().ensure_embedded(Path(settings.data_dir) / "pg")
        return url, url
    return settings.database_url, settings.direct_url or settings.database_url


def embedded() -> ModuleType:
    """The embedded PostgreSQL of local stacks and tests (``devstack.embedded``): part of
    a checkout, not of the installed package, which production (always given a
    ``DATABASE_URL``) never needs."""
    try:
        return importlib.import_module("devstack.embedded")
    except ImportError:
        raise SettingsError(
            "DATABASE_URL is not set and this installation has no embedded PostgreSQL (it "
            "comes with a checkout of the repository): set DATABASE_URL") from None


def connect_args(settings: Settings, url: str) -> dict[str, Any]:
    """asyncpg's arguments for ``url``: its DSN, TLS context and timeout (the URL's
    ``connect_timeout`` over ``MS8_CONNECT_TIMEOUT``)."""
    return {"timeout": settings.connect_timeout, **dburl.connect_kwargs(url)}


@dataclass
class Database:
    """What every process holds: the pool, the direct URL, the queries of its schema, and
    the process's view of outages (``outage``, see ``shared.outage``)."""

    pool: asyncpg.Pool
    direct_url: str
    queries: Queries
    channels: Channels
    settings: Settings
    url: str = ""  # the pool's; empty: the direct URL
    schema_version: int | None = None  # as found by shared.startup.open_checked
    outage: Outage = field(init=False)

    def __post_init__(self) -> None:
        self.outage = Outage(self.probe, is_connection_error=is_connection_error)

    @property
    def schema(self) -> str:
        return self.queries.schema

    async def connect_direct(self) -> Conn:
        """A session connection outside the pool (LISTEN, session locks). Caller closes it."""
        return await asyncpg.connect(
            **connect_args(self.settings, self.direct_url),
            statement_cache_size=100 if self.settings.statement_cache else 0,
            server_settings={"application_name": "ms8-jobs direct"},
        )

    @staticmethod
    async def close_direct(conn: Conn | None) -> None:
        """Close a direct connection, or drop it if closing takes more than two seconds
        (the server may be gone): its session, and the locks it held, end either way."""
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), 2)
        except Exception:
            conn.terminate()

    async def probe(self) -> None:
        """Open a fresh connection to each URL in use and ping: raises if any fails."""
        for url in dict.fromkeys((self.url or self.direct_url, self.direct_url)):
            conn = await asyncpg.connect(
                **connect_args(self.settings, url), statement_cache_size=0,
                server_settings={"application_name": "ms8-jobs probe"})
            try:
                await conn.fetchval(self.queries.ping, timeout=self.settings.connect_timeout)
            finally:
                await conn.close(timeout=self.settings.connect_timeout)

    async def close(self) -> None:
        await self.outage.close()
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def transaction(
        self, conn: Conn | None = None,
    ) -> AsyncIterator[Conn]:
        """A connection inside a transaction: the caller's (a savepoint if it is already in
        one), or one of the pool's."""
        if conn is not None:
            async with conn.transaction():
                yield conn
            return
        async with self.pool.acquire() as own, own.transaction():
            yield own


async def _keep_session(conn: Conn) -> None:
    """Reset of a pooled connection on release: nothing beyond asyncpg's own (a transaction
    left open is rolled back). Pooled connections carry no session state — LISTEN, session
    locks and settings live on direct connections — and the default reset query
    (``RESET ALL; UNLISTEN *; ...``) costs a round trip after every pooled statement."""


_QUIET_POOL_FLOOR = QuietPoolFloor(lambda error: is_connection_error(error))


async def create_pool(settings: Settings, url: str, application: str) -> asyncpg.Pool:
    logging.getLogger("asyncpg.pool").addFilter(_QUIET_POOL_FLOOR)  # once: a set
    pool = await asyncpg.create_pool(
        **connect_args(settings, url),
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        command_timeout=None,
        statement_cache_size=100 if settings.statement_cache else 0,
        max_inactive_connection_lifetime=300,
        server_settings={"application_name": f"ms8-jobs {application}"},
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def open_database(
    settings: Settings, application: str, *, url: str | None = None,
    direct_url: str | None = None,
) -> Database:
    """Open the pool (waiting for the server with backoff) and load the schema's queries."""
    if url is None:
        url, resolved_direct = resolve_urls(settings)
        direct_url = direct_url or resolved_direct
    pool = await retry_connection(
        lambda: create_pool(settings, url, application), what="database pool")
    return Database(
        pool=pool,
        url=url,
        direct_url=direct_url or url,
        queries=Queries.load(settings.schema),
        channels=Channels(settings.schema),
        settings=settings,
    )


async def retry_connection(
    connect: Callable[[], Awaitable[T]], *, what: str, attempts: int | None = None,
    first_delay: float = PROBE_FIRST, max_delay: float = PROBE_CAP,
) -> T:
    """Call ``connect`` until it succeeds, backing off with jitter on connection errors
    (to under a second, so that a process starting before its database is up is at work
    within a second of it). One warning for the wait, one line when it is over."""
    backoff = Backoff(first_delay, max_delay)
    tried = 0
    started = time.monotonic()
    while True:
        try:
            result = await connect()
        except CONNECTION_ERRORS as error:
            tried += 1
            if attempts is not None and tried >= attempts:
                raise
            (log.warning if tried == 1 else log.debug)(
                "database unreachable", what=what, error=mask_secrets(str(error)),
                retry_in=round(backoff.delay, 2))
            await backoff.sleep()
            continue
        if tried:
            log.info("database back", what=what,
                     after_seconds=round(time.monotonic() - started, 2))
        return result


def is_connection_error(error: BaseException) -> bool:
    return isinstance(error, CONNECTION_ERRORS)


def is_database_outage(error: BaseException) -> bool:
    """A connection error that came from the database driver: a statement, or a
    connection the pool opened, met the database gone. Code that also talks to other
    services (a handler's HTTP calls) raises the same ``OSError`` and ``TimeoutError``
    for them; those are told apart by where they were raised (an asyncpg frame in the
    traceback of the error or of what it was raised from, such as the cancellation an
    ``asyncio.timeout`` turned into a ``TimeoutError``)."""
    if not is_connection_error(error):
        return False
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.startswith("asyncpg") or _raised_in_driver(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _raised_in_driver(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__")
        if isinstance(module, str) and (module == "asyncpg" or module.startswith("asyncpg.")):
            return True
        tb = tb.tb_next
    return False


