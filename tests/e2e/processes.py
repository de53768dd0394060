"""Run the project's processes (``python -m worker``, ``-m scheduler``, ``-m api`` ...) as
real subprocesses, drive them with signals, and never leak one.

- Logs are forced to JSON lines and collected from stdout and stderr by a reader thread,
  so a test waits for an event (``await proc.wait_for_log("worker started")``) rather
  than sleeping.
- Each process runs in a session of its own (a Ctrl-C of the test run is not delivered
  to it twice) and, on Linux, is killed by the kernel if the test process dies.
- ``Processes`` (the ``processes`` fixture of ``tests/e2e/conftest.py``) kills whatever
  is still running at teardown, and prints the tail of every process's output when the
  test failed.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Process:
    """One subprocess running ``python -m <module> <args>``."""

    def __init__(
        self, module: str, args: Sequence[str] = (), *, env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        self.module = module
        self.args = list(args)
        self.name = name or module
        self.env = {**os.environ, "MS8_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._popen: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ running

    def start(self) -> Process:
        self._popen = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args], cwd=ROOT, env=self.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read, name=f"read-{self.name}",
                                        daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._popen is not None and self._popen.stdout is not None
        for line in self._popen.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        assert self._popen is not None, "not started"
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def send_signal(self, signum: int) -> None:
        if self.running:
            assert self._popen is not None
            self._popen.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, and reap."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait(timeout=30)
        self._close_output()

    def _close_output(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._popen is not None and self._popen.stdout is not None:
            self._popen.stdout.close()

    async def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to end; returns its status (negative: killed by a signal)."""
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} still running after {timeout}s\n{self.tail()}")
            await asyncio.sleep(0.02)
        await asyncio.to_thread(self._close_output)
        assert self.returncode is not None
        return self.returncode

    async def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.send_signal(signum)
        return await self.wait_exit(timeout)

    # ------------------------------------------------------------------ output

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines so far (other lines are skipped)."""
        with self._lock:
            lines = list(self.lines)
        events = []
        for line in lines:
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return events

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [e for e in self.logs() if e.get("event") == event
                and all(e.get(k) == v for k, v in fields.items())]

    def saw(self, event: str, **fields: Any) -> bool:
        return bool(self.find(event, **fields))

    async def wait_for_log(
        self, event: str, *, timeout: float = 30.0, **fields: Any,
    ) -> dict[str, Any]:
        """Wait for a log line with this event (and fields); fail if the process dies."""
        return await self.wait_for(lambda: (self.find(event, **fields) or [None])[0],
                                   timeout=timeout, what=f"log {event!r} {fields or ''}")

    async def wait_for(
        self, predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition",
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if not self.running:
                raise AssertionError(
                    f"{self.name} exited ({self.returncode}) while waiting for {what}\n"
                    f"{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what} from {self.name}\n"
                    f"{self.tail()}")
            await asyncio.sleep(0.02)

    def tail(self, n: int = 40) -> str:
        with self._lock:
            lines = self.lines[-n:]
        return "\n".join(f"  [{self.name}] {line}" for line in lines)


class Processes:
    """Starts processes for one test and kills whatever still runs at the end."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env or {})
        self.started: list[Process] = []

    def start(
        self, module: str, *args: str, name: str | None = None, **env: str,
    ) -> Process:
        proc = Process(module, args, env={**self.env, **env}, name=name)
        self.started.append(proc)
        return proc.start()

    def close(self, *, show_output: bool = False) -> None:
        for proc in self.started:
            proc.kill()
        if show_output:
            for proc in self.started:
                print(f"--- output of {proc.name} (exit {proc.returncode})\n{proc.tail(80)}")
