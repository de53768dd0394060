"""The Node.js peers' scripts (``bench/node/``): whether they can run here, and running them.

pg-boss and BullMQ are Node libraries, so their side of each scenario is a small script
in ``bench/node/`` (``pgboss.mjs``, ``bullmq.mjs``) with the packages pinned in its
``package-lock.json``, installed into ``bench/node/node_modules`` by ``scripts/setup``
where ``node`` and ``npm`` exist. Each script has one-shot commands (install, enqueue)
that answer with one JSON line, a ``sender`` that stays up and sends one job per line
read on stdin, and a ``worker`` started like the Python workers (``bench.processes``).

The sender stamps each acknowledged send with its own clock (``performance.timeOrigin
+ performance.now()``, the same wall clock as Python's ``time.time()``) right after the
send resolved: the latency scenario measures from there, as it does from the Python
senders' ``time.time()`` right after their send returned, without the pipe back to the
benchmark in between.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.systems import SendOne

NODE_DIR = Path(__file__).resolve().parent / "node"


def node() -> str | None:
    return shutil.which("node")


def missing(package: str) -> str | None:
    """Why ``package`` (an npm package of bench/node) cannot be measured here, or None."""
    if node() is None:
        return "node not found (Node.js 20 or newer, with npm; then scripts/setup)"
    if not (NODE_DIR / "node_modules" / package / "package.json").exists():
        return f"{package} not installed in bench/node: scripts/setup (npm ci there)"
    return None


def version(package: str) -> str:
    try:
        meta = json.loads((NODE_DIR / "node_modules" / package / "package.json").read_text())
    except (FileNotFoundError, ValueError):
        return "not installed"
    return str(meta.get("version", "?"))


def node_version() -> str:
    found = node()
    if found is None:
        return "not installed"
    return subprocess.run([found, "--version"], capture_output=True, text=True,
                          check=False).stdout.strip()


def argv(script: str, *args: str) -> list[str]:
    found = node()
    if found is None:
        raise RuntimeError("node not found")
    return [found, str(NODE_DIR / script), *args]


async def call(script: str, env: Mapping[str, str], *args: str,
               timeout: float = 120.0) -> dict[str, Any]:
    """Run a one-shot command of ``script``; its last stdout line, as JSON."""
    proc = await asyncio.create_subprocess_exec(
        *argv(script, *args), cwd=NODE_DIR, env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"node {script} {' '.join(args)}: no answer in {timeout:.0f} s") \
            from None
    if proc.returncode != 0:
        raise RuntimeError(f"node {script} {' '.join(args)} exited with {proc.returncode}:\n"
                           f"{err.decode(errors='replace')[-3000:]}")
    lines = out.decode().strip().splitlines()
    if not lines:
        raise RuntimeError(f"node {script} {' '.join(args)} printed nothing")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@asynccontextmanager
async def sender(script: str, env: Mapping[str, str],
                 timeout: float = 60.0) -> AsyncIterator[SendOne]:
    """The ``sender`` command of ``script``, open for the block: ``send(seq)`` returns the
    sender's own time of the acknowledged send."""
    proc = await asyncio.create_subprocess_exec(
        *argv(script, "sender"), cwd=NODE_DIR, env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

    async def answer() -> str:
        try:
            line = await asyncio.wait_for(stdout.readline(), timeout)
        except TimeoutError:
            raise RuntimeError(f"node {script} sender: no answer in {timeout:.0f} s") from None
        if not line:
            await proc.wait()
            raise RuntimeError(f"node {script} sender exited with {proc.returncode}:\n"
                               f"{(await stderr.read()).decode(errors='replace')[-3000:]}")
        return line.decode().strip()

    try:
        if (first := await answer()) != "ready":
            raise RuntimeError(f"node {script} sender: {first!r} instead of ready")

        async def send(seq: str) -> float:
            stdin.write(f"{seq}\n".encode())
            await stdin.drain()
            got, _, at = (await answer()).partition(" ")
            if got != seq:
                raise RuntimeError(f"node {script} sender answered {got!r} for {seq!r}")
            return float(at)

        yield send
    finally:
        if proc.returncode is None:
            stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
