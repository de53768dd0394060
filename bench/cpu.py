"""CPU time spent by the processes of a measurement: the workers and the database server.

On a 2-core machine a drain is bounded by CPU: the worker's Python and PostgreSQL's
backends share two cores. Dividing each side's CPU time by the jobs done says where the
time goes (and how far a rate can go: 2 s of CPU per second of wall time at most).

Read from ``/proc/<pid>/stat`` (user + system time). For the server: the postmaster
(the parent of our own backend) with its children alive at the time of reading, plus
its reaped children (backends that exited meanwhile); only possible when the server
runs on this machine, else ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ServerCpu:
    postmaster: int

    @classmethod
    async def find(cls, conn: asyncpg.Connection) -> ServerCpu | None:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        fields = _stat(backend)
        if fields is None:  # the server is on another machine (or in a container)
            return None
        return cls(int(fields[1]))  # ppid

    def seconds(self) -> float:
        return own_seconds(self.postmaster, reaped=True) + processes_seconds(
            _children(self.postmaster))
