"""CPU time spent by the processes of a measurement: the workers and the database server.

On a 2-core machine a drain is bounded by CPU: the worker's Python and PostgreSQL's
backends share two cores. Dividing each side's CPU time by the jobs done says where the
time goes (and how far a rate can go: 2 s of CPU per second of wall time at most).

Read from ``/proc/<pid>/stat`` (user + system time). For the server, when it is the
run's own: the postmaster (the parent of our own backend) with its children alive at
the time of reading, plus its reaped children (backends that exited meanwhile). When it
is a server the run does not own (``BENCH_DATABASE_URL``, maybe shared), its other work
is not the run's: only the backends of the measured database count (found by their
process title, which names the database; autovacuum workers on it included), each read
whenever the server's CPU is, so a backend that exits between two readings keeps what it
had at the last one; the server's own processes (WAL writer, checkpointer) are left
out. Neither is possible when the server runs elsewhere (or its titles are off): then
``None``, and the report says why (``ServerCpu.unavailable``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import asyncpg

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2:].split()  # fields from the 3rd (state) on


def own_seconds(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of ``pid`` (and of its reaped children when ``reaped``)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICK


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def processes_seconds(pids: Iterable[int]) -> float:
    return sum(own_seconds(pid) for pid in pids)


def _title(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").split()
    except (FileNotFoundError, ProcessLookupError):
        return []


@dataclass
class ServerCpu:
    """The server's CPU seconds so far: all of it (``database`` None), or that of the
    backends of ``database``."""

    postmaster: int
    database: str | None = None
    _seen: dict[int, float] = field(default_factory=dict)  # backend -> seconds last read

    #: Why the last ``find`` returned None (for the report).
    unavailable: ClassVar[str | None] = None

    @classmethod
    async def find(cls, conn: asyncpg.Connection, *, whole_server: bool = True,
                   ) -> ServerCpu | None:
        """The server of ``conn``; with ``whole_server`` False, only the backends of
        ``conn``'s database."""
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        fields = _stat(backend)
        if fields is None:  # the server is on another machine (or in a container)
            ServerCpu.unavailable = ("its processes are not visible here (another machine "
                                     "or container)")
            return None
        if whole_server:
            return cls(int(fields[1]))  # ppid
        database = await conn.fetchval("SELECT current_database()")
        if database not in _title(backend):
            ServerCpu.unavailable = ("its process titles do not name the database "
                                     "(update_process_title off)")
            return None
        return cls(int(fields[1]), database)

    def seconds(self) -> float:
        if self.database is None:
            return own_seconds(self.postmaster, reaped=True) + processes_seconds(
                _children(self.postmaster))
        for pid in _children(self.postmaster):
            if self.database in _title(pid):
                self._seen[pid] = own_seconds(pid)
        return sum(self._seen.values())


def server_cpu_scope(owned: bool) -> str:
    """What the server's CPU figures count, for the report."""
    if owned:
        return "every process of the run's own server"
    return ("only the backends of each measurement's database (a server the run does not "
            "own: its WAL writer, checkpointer and other databases' sessions are not "
            "counted)")
