"""The PGQueuer worker of the benchmark, started as ``pgq run bench.pgqueuer_app:create``.

A ``QueueManager`` over one asyncpg connection (the setup PGQueuer's own benchmark
uses), with the two benchmark entrypoints: ``noop`` and ``probe``. The DSN comes from
``PGDSN``, as for every ``pgq`` command; batch size and the rest are ``pgq run`` flags.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager

from bench.probe import report_start


@asynccontextmanager
async def create() -> AsyncIterator[QueueManager]:
    conn = await asyncpg.connect(os.environ["PGDSN"])
    try:
        manager = QueueManager(Queries(AsyncpgDriver(conn)))

        @manager.entrypoint("noop")
        async def noop(job: Job) -> None:
            return None

        @manager.entrypoint("probe")
        async def probe(job: Job) -> None:
            report_start((job.payload or b"").decode())

        yield manager
    finally:
        await conn.close()


def main(argv: list[str]) -> None:
    """``python -m bench.pgqueuer_app BATCH_SIZE``: what ``pgq run`` does (the same
    supervisor, on uvloop), for PGQueuer 1.6's CLI fails to parse its own default log
    level with the typer release installed beside it."""
    import uvloop
    from pgqueuer import run

    batch_size = int(argv[0]) if argv else 10
    uvloop.run(run(create, batch_size=batch_size))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
