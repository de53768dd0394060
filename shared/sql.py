"""Named SQL queries, loaded once from ``sql/queries/*.sql``.

Every query the project runs lives in a ``.sql`` file under a ``-- name: some_query``
header, followed by ``--`` description lines. Files are parsed once; the schema is
substituted once, at load, as a quoted identifier, so no SQL is ever assembled from
values. Placeholders:

- ``/*schema*/``       the quoted schema and a dot: ``"ms8jobs".``
- ``/*schema_name*/``  the quoted schema alone: ``"ms8jobs"``
- ``/*channel*/``      inside string literals, the bare schema and a dot (NOTIFY channels)
- ``/*analytics*/``    the quoted schema of the MS8 domain tables and a dot:
                       ``"ms8jobs_analytics".`` (its own schema, apart from the queue's)
- ``/*analytics_name*/`` that schema alone: ``"ms8jobs_analytics"``
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType


def _sql_dir() -> Path:
    """``sql/`` of the repository in a checkout (or an editable install); in an installed
    wheel, the copy packaged as ``shared/_sql`` (see pyproject.toml)."""
    here = Path(__file__).resolve().parent
    packaged = here / "_sql"
    return packaged if (packaged / "queries").is_dir() else here.parent / "sql"


SQL_DIR = Path(os.environ.get("MS8_SQL_DIR") or _sql_dir())
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
# The MS8 domain's tables live in "<schema>_analytics" (user-roles, snapshots, runs).
ANALYTICS_SUFFIX = "_analytics"
_HEADER = re.compile(r"^-- name: ([a-z0-9_]+)[ \t]*$", re.MULTILINE)


class SqlError(Exception):
    """A query file or the schema name is malformed."""


def check_schema_name(schema: str) -> str:
    if not SCHEMA_NAME.fullmatch(schema):
        raise SqlError(
            f"schema name {schema!r} is not allowed: use lower-case letters, digits and "
            "underscores, starting with a letter or underscore, at most 40 characters"
        )
    return schema


def render(text: str, schema: str) -> str:
    """Fill the schema placeholders of a query or migration."""
    check_schema_name(schema)
    return (
        text.replace("/*analytics*/", f'"{schema}{ANALYTICS_SUFFIX}".')
        .replace("/*analytics_name*/", f'"{schema}{ANALYTICS_SUFFIX}"')
        .replace("/*schema*/", f'"{schema}".')
        .replace("/*schema_name*/", f'"{schema}"')
        .replace("/*channel*/", f"{schema}.")
    )


def parse_queries(text: str, source: str = "<string>") -> dict[str, str]:
    """Split a query file into {name: sql}; text before the first header is a comment."""
    parts = _HEADER.split(text)
    preamble, pairs = parts[0], parts[1:]
    if any(line.strip() and not line.lstrip().startswith("--") for line in preamble.splitlines()):
        raise SqlError(f"{source}: SQL before the first '-- name:' header")
    queries: dict[str, str] = {}
    for name, body in zip(pairs[::2], pairs[1::2], strict=True):
        sql = body.strip()
        if not any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines()):
            raise SqlError(f"{source}: query {name!r} is empty")
        if name in queries:
            raise SqlError(f"{source}: query {name!r} is defined twice")
        queries[name] = sql
    return queries


@cache
def _raw_queries(directory: Path = SQL_DIR / "queries") -> Mapping[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, sql in parse_queries(path.read_text(), path.name).items():
            if name in queries:
                raise SqlError(f"{path.name}: query {name!r} is also defined in another file")
            queries[name] = sql
    return MappingProxyType(queries)


@dataclass(frozen=True)
class Queries:
    """The named queries of one schema: ``queries.fetch_jobs`` or ``queries["fetch_jobs"]``."""

    schema: str
    by_name: Mapping[str, str]

    @classmethod
    def load(cls, schema: str, directory: Path | None = None) -> Queries:
        raw = _raw_queries(directory or SQL_DIR / "queries")
        rendered = {name: render(sql, schema) for name, sql in raw.items()}
        return cls(schema, MappingProxyType(rendered))

    def __getitem__(self, name: str) -> str:
        try:
            return self.by_name[name]
        except KeyError:
            raise SqlError(f"no query named {name!r} in sql/queries") from None

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]
