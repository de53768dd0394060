"""Starting a process: one way for every entry point to open the database, refuse, or fail.

A process either starts or says in one line why not, and exits 2:

    worker: DATABASE_URL is not set: ...

A *refusal* is a reason the operator can fix: a bad setting, no ``DATABASE_URL`` outside
dev, a schema this code cannot run on, a pooler without its setting. It is any exception
in ``REFUSALS``; code that finds a new kind raises ``Refusal``. Anything else is a crash:
exit 1, logged through structlog (with JSON logs, one line whose ``exception`` field
holds the traceback, never a raw traceback that a log pipeline splits into lines).

``open_checked`` is what every long-running process does before its work: open the pool
(waiting for the server), make sure no transaction-mode pooler is in the way of what the
process does (``shared.pooler``), and check the schema on a direct connection, migrating
it when allowed; checks that every process must pass are added there, once.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Awaitable, Callable, Mapping

import asyncpg

from shared import pooler
from shared.conn import Conn
from shared.db import (
    Database,
    connect_args,
    is_connection_error,
    open_database,
    retry_connection,
)
from shared.logging import configure_logging, configured_format, get_logger, mask_secrets
from shared.migrate import SchemaError, ensure_schema
from shared.pooler import PoolerError
from shared.settings import Settings, SettingsError

EXIT_CRASHED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


class Refusal(Exception):
    """A reason not to start that the operator can fix; the message says how."""


# What the server answers when the URL names a user, password or database it does not
# know, and what asyncpg raises for TLS settings it cannot use: all fixed by the operator.
_REFUSED_CONNECTIONS: tuple[type[Exception], ...] = (
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.ClientConfigurationError,
    ssl.SSLCertVerificationError,
)
REFUSALS: tuple[type[Exception], ...] = (
    Refusal, SettingsError, SchemaError, PoolerError, *_REFUSED_CONNECTIONS)


def run(prog: str, main: Callable[[], int], env: Mapping[str, str] | None = None) -> int:
    """Run an entry point's ``main``; a refusal is one line and exit 2, a crash exit 1.

    Logging is set up first from the environment (leniently: a bad ``MS8_LOG_*`` value is
    itself reported as a refusal by the settings), so every line, the refusal included,
    comes out in the format the platform reads."""
    env = os.environ if env is None else env
    configure_logging(prog, *_log_choice(env))
    try:
        return main()
    except REFUSALS as error:
        if isinstance(error, _REFUSED_CONNECTIONS):
            return refuse(prog, f"the database refused the connection: {error}")
        return refuse(prog, str(error))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        if is_connection_error(error):  # gave up waiting for it (the migration step does)
            get_logger(prog).error("database unreachable", error=mask_secrets(str(error)))
        else:
            get_logger(prog).error("crashed", exc_info=True)
        return EXIT_CRASHED


def refuse(prog: str, reason: str) -> int:
    """Report why ``prog`` does not start, in one line; returns the exit status (2)."""
    line = " ".join(mask_secrets(reason).split())
    if configured_format() == "json":
        get_logger(prog).error("cannot start", reason=line)
    else:
        print(f"{prog}: {line}", file=sys.stderr, flush=True)
    return EXIT_REFUSED


async def open_checked(
    settings: Settings, application: str, *, sessions: bool = True, fix: str = "",
) -> Database:
    """The pool of a process that may start: server reachable, no pooler in the way of
    its queries or (when it needs ``sessions``: LISTEN, session locks, migrating) its
    direct connections (``fix``: another way out to name), schema current."""
    db = await open_database(settings, application)
    try:
        await check_pooler(db, sessions=sessions or settings.auto_migrate, fix=fix)
        conn = await retry_connection(db.connect_direct, what="schema check")
        try:
            db.schema_version = await ensure_schema(conn, db.queries,
                                                    auto_migrate=settings.auto_migrate)
        finally:
            await conn.close()
    except BaseException:
        await db.close()
        raise
    return db


async def check_pooler(db: Database, *, sessions: bool, fix: str = "") -> None:
    """``shared.pooler.check`` on the database's pool and direct URLs."""
    pool_url = db.url or db.direct_url

    def pooled() -> Awaitable[Conn]:
        return asyncpg.connect(
            **connect_args(db.settings, pool_url),
            statement_cache_size=100 if db.settings.statement_cache else 0,
            server_settings={"application_name": "ms8-jobs probe"})

    await pooler.check(db.settings, db.queries, pool=pooled, direct=db.connect_direct,
                       same_url=pool_url == db.direct_url, sessions=sessions, fix=fix)


def _log_choice(env: Mapping[str, str]) -> tuple[str, str]:
    level = env.get("MS8_LOG_LEVEL", "").strip().lower()
    fmt = env.get("MS8_LOG_FORMAT", "").strip().lower()
    return (level if level in ("debug", "info", "warning", "error") else "info",
            fmt if fmt in ("auto", "json", "console") else "auto")
