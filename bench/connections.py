"""How many server connections each process under test holds, from ``pg_stat_activity``.

Every ms8-jobs process names its connections alike (``application_name`` is
``ms8-jobs worker`` in every worker), so the name cannot tell two workers apart. The
client's TCP port can: ``pg_stat_activity.client_port`` of each backend of the measured
database is matched with the local ports of the sockets each process (and its children)
holds open, read from ``/proc/<pid>/fd`` and ``/proc/net/tcp{,6}``. A server reached over
a Unix socket has no client port: the counts are then unavailable (``None``).

``Held`` samples while a measurement runs and keeps each process's highest count: pools
grow with the load and shrink when idle, so one reading could miss the peak.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import asyncpg

from bench.processes import Process


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return inodes
    for name in names:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{name}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _local_ports() -> dict[str, int]:
    """{socket inode: local TCP port} of every TCP socket of this machine."""
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            columns = line.split()
            ports[columns[9]] = int(columns[1].rsplit(":", 1)[1], 16)
    return ports


def _family(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [pid, *(int(child) for child in f.read().split())]
    except (FileNotFoundError, ProcessLookupError):
        return [pid]


async def count(admin: asyncpg.Connection, database: str,
                procs: Sequence[Process]) -> dict[str, int] | None:
    """{process name: backends of ``database`` it is connected to} right now; None when the
    backends have no client port (a Unix socket)."""
    rows = await admin.fetch(
        "SELECT client_port FROM pg_stat_activity WHERE datname = $1 AND backend_type = "
        "'client backend'", database)
    backend_ports = {row["client_port"] for row in rows}
    if rows and backend_ports <= {None, -1}:
        return None
    ports = _local_ports()
    counts = {}
    for proc in procs:
        inodes = set().union(*(_socket_inodes(pid) for pid in _family(proc.pid)))
        counts[proc.name] = sum(1 for inode in inodes if ports.get(inode) in backend_ports)
    return counts


@dataclass
class Held:
    """The most connections each process held at once while sampled."""

    peak: dict[str, int] = field(default_factory=dict)
    unavailable: bool = False

    def shown(self) -> str:
        if self.unavailable:
            return "n/a (Unix socket)"
        return " ".join(str(n) for n in self.peak.values()) or "-"


@contextlib.asynccontextmanager
async def sampled(admin: asyncpg.Connection, database: str, procs: Sequence[Process],
                  every: float = 0.25) -> AsyncIterator[Held]:
    """Sample the connections of ``procs`` every ``every`` seconds during the block."""
    held = Held({proc.name: 0 for proc in procs})

    async def sample() -> None:
        while True:
            counts = await count(admin, database, procs)
            if counts is None:
                held.unavailable = True
                return
            for name, n in counts.items():
                held.peak[name] = max(held.peak[name], n)
            await asyncio.sleep(every)

    task = asyncio.create_task(sample())
    try:
        yield held
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):  # a last reading, unless the server is gone
            counts = await count(admin, database, procs)
            if counts is not None:
                for name, n in counts.items():
                    held.peak[name] = max(held.peak[name], n)
