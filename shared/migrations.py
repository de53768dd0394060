"""The migration files this code knows, and where a database's schema stands against them.

A file is ``sql/migrations/NNNN_name.sql`` and its first line says what code one version
older can do with the schema it produces:

    -- compatible: previous     additive: the previous code keeps running (and restarting)
    -- breaking                 the previous code must not run on it

The migrator records each applied file's checksum and that compatibility in
``schema_version``. That is how code *older* than the schema knows whether it may run:
it cannot read files it does not have, but it can read what their migrator wrote. And it
is how an applied file that was edited afterwards is caught: the schema was built from
the old text, so the new text would never run anywhere that already migrated.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shared.conn import Conn
from shared.sql import SQL_DIR, Queries, render

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
COMPATIBLE = "previous"
BREAKING = "breaking"
_PRAGMAS = {"-- compatible: previous": COMPATIBLE, "-- breaking": BREAKING}

# Where a database's schema stands against the code's migrations.
EMPTY = "empty"                # nothing applied yet
BEHIND = "behind"              # older than the code: migrate first
CURRENT = "current"
COMPATIBLE_NEWER = "compatible"  # newer, and every newer migration is additive
INCOMPATIBLE = "incompatible"  # newer, with a breaking migration this code does not know
EDITED = "edited"              # an applied migration differs from this code's file


class SchemaError(RuntimeError):
    """The database schema does not match this code."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    compatibility: str
    checksum: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def sql(self, schema: str) -> str:
        return render(self.path.read_text(), schema)


def discover(directory: Path | None = None) -> list[Migration]:
    """The migrations in ``directory`` (default ``sql/migrations``), in order."""
    directory = SQL_DIR / "migrations" if directory is None else directory
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise SchemaError(f"migration file {path.name!r} is not named NNNN_name.sql")
        text = path.read_text()
        first = text.split("\n", 1)[0].strip()
        if first not in _PRAGMAS:
            raise SchemaError(
                f"migration {path.name} must start with a line '-- compatible: previous' "
                "(code one version older can run on the result) or '-- breaking'")
        # Line endings normalised: a checkout with CRLF is the same migration.
        digest = hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()
        migrations.append(Migration(int(match[1]), match[2], path, _PRAGMAS[first], digest))
    versions = [m.version for m in migrations]
    # Gaps are allowed (numbers may be reserved ahead of the work that uses them); the
    # migrator applies whatever is missing, in order.
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise SchemaError(f"migration numbers must be unique and start at 1: {versions}")
    return migrations


@cache
def known_migrations() -> tuple[Migration, ...]:
    """This code's migrations, read once (readiness compares them on every probe)."""
    return tuple(discover())


def latest_version() -> int:
    """The newest migration this code knows."""
    return max((m.version for m in known_migrations()), default=0)


@dataclass(frozen=True)
class Applied:
    """A row of ``schema_version``; checksum and compatibility may be missing on rows
    recorded before the table had those columns."""

    version: int
    name: str
    checksum: str | None
    compatibility: str | None


@dataclass(frozen=True)
class SchemaStatus:
    state: str
    version: int
    expected: int
    detail: str

    @property
    def runnable(self) -> bool:
        """This code may run on the schema as it is."""
        return self.state in (CURRENT, COMPATIBLE_NEWER)


async def read_applied(conn: Conn, queries: Queries) -> list[Applied]:
    table = f'"{queries.schema}".schema_version'
    if not await conn.fetchval(queries.version_table_exists, table):
        return []
    return [Applied(r["version"], r["name"], r["checksum"], r["compatibility"])
            for r in await conn.fetch(queries.applied_versions)]


def compare(applied: Sequence[Applied], known: Sequence[Migration], schema: str) -> SchemaStatus:
    """Where the applied migrations stand against the ones this code knows."""
    expected = max((m.version for m in known), default=0)
    version = max((a.version for a in applied), default=0)
    files = {m.version: m for m in known}
    for row in applied:
        migration = files.get(row.version)
        if migration is None:
            continue
        if row.name != migration.name or (
                row.checksum is not None and row.checksum != migration.checksum):
            return SchemaStatus(EDITED, version, expected, (
                f"migration {migration.label} differs from the one applied to schema "
                f"{schema!r} ({row.version:04d}_{row.name}, checksum "
                f"{(row.checksum or '?')[:12]}; this code has {migration.checksum[:12]}): an "
                "applied migration must never change; restore the file as it was applied "
                "and put the change in a new migration"))
    if not applied:
        return SchemaStatus(EMPTY, 0, expected, f"schema {schema!r} has no migration applied")
    # Rows this code has no file for were written by newer code, which recorded whether
    # older code may run on them.
    breaking = [a for a in applied if a.version not in files and a.compatibility != COMPATIBLE]
    if breaking:
        names = ", ".join(f"{a.version:04d}_{a.name}" for a in breaking)
        return SchemaStatus(INCOMPATIBLE, version, expected, (
            f"schema {schema!r} is at version {version}, newer than this code (which knows "
            f"up to {expected}), and code that old cannot run on it ({names} "
            "is breaking): deploy the newer code"))
    done = {a.version for a in applied}
    missing = [m.label for m in known if m.version not in done]
    if missing:
        return SchemaStatus(BEHIND, version, expected, (
            f"schema {schema!r} lacks migrations this code needs ({', '.join(missing)})"))
    if all(a.version in files for a in applied):
        return SchemaStatus(CURRENT, version, expected, f"schema {schema!r} is current")
    return SchemaStatus(COMPATIBLE_NEWER, version, expected, (
        f"schema {schema!r} is at version {version}, newer than this code (which knows up "
        f"to {expected}); every migration it does not know is compatible with older code"))


async def schema_status(
    conn: Conn, queries: Queries, migrations: Sequence[Migration] | None = None,
) -> SchemaStatus:
    """Read the version table and compare it with this code's migrations."""
    return compare(await read_applied(conn, queries),
                   known_migrations() if migrations is None else migrations, queries.schema)
