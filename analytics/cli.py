"""``ms8-jobs seed --user-roles N``: fill the user-roles for a local stack or a benchmark.

Registered as an ``ms8_jobs.commands`` entry point (pyproject.toml), so the operator
CLI in ``shared`` gains the command without importing this package.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from analytics import user_roles
from shared.db import Database
from shared.migrate import ensure_schema
from shared.terminal import ProgressBar

Action = Callable[[Database, argparse.Namespace], Awaitable[None]]


def seed_command(sub: Any) -> Action:
    """Add the ``seed`` sub-command to the parser; returns what it runs."""
    parser = sub.add_parser("seed", help="fill user-roles 1..N (idempotent)")
    parser.add_argument("--user-roles", type=int, required=True, metavar="N",
                        help="how many user-roles should exist (deterministic ids 1..N)")
    return _seed


async def _seed(db: Database, args: argparse.Namespace) -> None:
    conn = await db.connect_direct()
    try:  # a fresh database: seeding is often the first thing done to it
        await ensure_schema(conn, db.queries, auto_migrate=db.settings.auto_migrate)
    finally:
        await conn.close()
    bar = ProgressBar("seeding user-roles")
    started = time.perf_counter()
    inserted = await user_roles.seed(db, args.user_roles, on_progress=bar.update)
    bar.close()
    counts = await user_roles.count(db)
    sys.stdout.write(orjson.dumps({
        "inserted": inserted, "user_roles": counts.total, "active": counts.active,
        "seconds": round(time.perf_counter() - started, 3)}).decode() + "\n")
