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

A file may also define *fragments*, under ``-- fragment: some_list`` headers: a list of
column names written once and used by many queries, so that the statements that move a
job between ``jobs`` and ``history`` cannot drift apart. In a query,

- ``/*some_list*/``                         the list as written;
- ``/*some_list: state='failed', progress=100*/``  the same names as values, each column
  itself except those given (an expression each); a name not in the list is an error.

Fragments are expanded when the files are read, before the schema is filled in.
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
_HEADER = re.compile(r"^-- (name|fragment): ([a-z0-9_]+)[ \t]*$", re.MULTILINE)
_USE = re.compile(r"/\*([a-z0-9_]+)(?::([^*]*))?\*/")
# Each placeholder and what it becomes for a schema (see the module doc).
_PLACEHOLDERS = {
    "analytics": '"{schema}' + ANALYTICS_SUFFIX + '".',
    "analytics_name": '"{schema}' + ANALYTICS_SUFFIX + '"',
    "schema": '"{schema}".',
    "schema_name": '"{schema}"',
    "channel": "{schema}.",
}


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
    for name, template in _PLACEHOLDERS.items():
        text = text.replace(f"/*{name}*/", template.format(schema=schema))
    return text


def parse_queries(text: str, source: str = "<string>") -> dict[str, str]:
    """Split a query file into {name: sql}, fragments expanded; text before the first
    header is a comment."""
    queries, fragments = _parse(text, source)
    return {name: expand(sql, fragments, f"{source}: query {name!r}")
            for name, sql in queries.items()}


def _parse(text: str, source: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    parts = _HEADER.split(text)
    preamble, triples = parts[0], parts[1:]
    if any(line.strip() and not line.lstrip().startswith("--") for line in preamble.splitlines()):
        raise SqlError(f"{source}: SQL before the first '-- name:' header")
    queries: dict[str, str] = {}
    fragments: dict[str, list[str]] = {}
    for kind, name, body in zip(triples[::3], triples[1::3], triples[2::3], strict=True):
        sql = "\n".join(line for line in body.strip().splitlines()
                        if kind == "name" or not line.strip().startswith("--"))
        if not any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines()):
            raise SqlError(f"{source}: {'query' if kind == 'name' else kind} {name!r} is empty")
        if name in queries or name in fragments:
            raise SqlError(f"{source}: {name!r} is defined twice")
        if kind == "name":
            queries[name] = sql
        else:
            fragments[name] = [column.strip() for column in sql.split(",")]
    return queries, fragments


def expand(sql: str, fragments: Mapping[str, list[str]], where: str = "query") -> str:
    """Replace each use of a fragment (see the module doc) by its columns or values."""

    def use(match: re.Match[str]) -> str:
        name, overrides = match.group(1), match.group(2)
        if name not in fragments:
            if name in _PLACEHOLDERS and overrides is None:
                return match.group(0)
            raise SqlError(f"{where}: /*{name}*/ is neither a placeholder nor a fragment")
        columns = fragments[name]
        if overrides is None:
            return ", ".join(columns)
        values = _overrides(overrides, where)
        unknown = sorted(set(values) - set(columns))
        if unknown:
            raise SqlError(f"{where}: {unknown[0]!r} is not a column of fragment {name!r}")
        return ", ".join(values.get(column, column) for column in columns)

    return _USE.sub(use, sql)


def _overrides(text: str, where: str) -> dict[str, str]:
    """``state='failed', output=coalesce(a, b)`` → {state: 'failed', output: coalesce(a, b)}:
    split on the commas outside parentheses and quotes."""
    items, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and char == ",":
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    values: dict[str, str] = {}
    for item in (part.strip() for part in items if part.strip()):
        column, sep, value = item.partition("=")
        if not sep or not column.strip() or not value.strip():
            raise SqlError(f"{where}: {item!r} is not column=expression")
        values[column.strip()] = value.strip()
    return values


@cache
def _raw_queries(directory: Path = SQL_DIR / "queries") -> Mapping[str, str]:
    """Every query of the folder, fragments (of any of its files) expanded."""
    parsed = {path.name: _parse(path.read_text(), path.name)
              for path in sorted(directory.glob("*.sql"))}
    fragments: dict[str, list[str]] = {}
    for source, (_, found) in parsed.items():
        for name, columns in found.items():
            if name in fragments:
                raise SqlError(f"{source}: fragment {name!r} is also defined in another file")
            fragments[name] = columns
    queries: dict[str, str] = {}
    for source, (found_queries, _) in parsed.items():
        for name, sql in found_queries.items():
            if name in queries:
                raise SqlError(f"{source}: query {name!r} is also defined in another file")
            queries[name] = expand(sql, fragments, f"{source}: query {name!r}")
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
