"""Processes under test: started as subprocesses, watched, and always stopped.

Workers and servers run as real processes, as in production, each with its output in a
log file of the run (shown when a process dies early). ``running`` stops them on the
way out whatever happened — SIGTERM, then SIGKILL after a grace period — so that a
failed scenario never leaves a worker draining the next scenario's database. Peak
memory is sampled from ``/proc`` while they run: the resident set (``VmRSS``) of the
process and of its direct children.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1


class ProcessDied(RuntimeError):
    """A process under test exited while it was needed."""


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    peak_rss: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise ProcessDied(
                f"{self.name} exited with code {self.popen.returncode}; "
                f"last lines of {self.log_path}:\n{tail(self.log_path)}")

    def sample_rss(self) -> int:
        """Record the current resident set of the process and its children, in bytes."""
        pids = [self.pid, *_children(self.pid)]
        total = sum(_rss(pid) for pid in pids)
        self.peak_rss = max(self.peak_rss, total)
        return total

    def stop(self, grace: float = 10.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self.popen.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait()


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as children:
            return [int(child) for child in children.read().split()]
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return []


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no output)"


# Loaded here, in the parent: between fork and exec the child only calls it.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL me when the benchmark process dies, so that a
    killed run never leaves workers behind (Linux ``PR_SET_PDEATHSIG``)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start(name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path) -> Process:
    """Start ``argv`` (``python -m ...`` style) in its own process group."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as out:
        popen = subprocess.Popen(
            list(argv), cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if _LIBC is not None else None)
    return Process(name, popen, log_path)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for a server the run starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@contextlib.asynccontextmanager
async def running(
    specs: Sequence[tuple[str, Sequence[str], Mapping[str, str]]], log_dir: Path,
    *, sample_every: float = 0.05,
) -> AsyncIterator[list[Process]]:
    """Run processes for the duration of the block, sampling their memory meanwhile."""
    procs: list[Process] = []
    sampler: asyncio.Task[None] | None = None
    try:
        for name, argv, env in specs:
            procs.append(start(name, argv, env, log_dir))

        async def sample() -> None:
            while True:
                for proc in procs:
                    proc.sample_rss()
                await asyncio.sleep(sample_every)

        sampler = asyncio.create_task(sample())
        yield procs
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))
