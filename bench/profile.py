"""Where a worker spends its time while draining: py-spy samples, summed per function.

``--profile`` attaches ``py-spy record`` (non-blocking, so the worker is never paused)
to the single ms8-jobs worker of the first drain, and turns its collapsed stacks into
two short lists: the functions the samples were *in* (self time) and the functions on
the stack (total time), as shares of all samples. The raw stacks stay in the log
directory for a flame graph. Idle samples (the event loop waiting in ``select``) are
kept (``--idle``): the share of time a worker waits on the database shows there.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.processes import Process

TOP = 15


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("--profile needs py-spy: pip install -e '.[bench]'")
    return found


@dataclass
class Profiler:
    popen: subprocess.Popen[bytes]
    raw: Path

    @classmethod
    def start(cls, target: Process, stem: Path, rate: int = 500) -> Profiler:
        raw = stem.with_suffix(".stacks.txt")
        popen = subprocess.Popen(
            [_py_spy(), "record", "--pid", str(target.pid), "--rate", str(rate),
             "--format", "raw", "--output", str(raw), "--nonblocking", "--idle"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return cls(popen, raw)

    def finish(self) -> str:
        """Stop sampling and summarise; returns the summary text."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait()
        if not self.raw.exists():
            return "py-spy wrote no samples"
        return summarise(self.raw.read_text().splitlines()) + f"\n(raw stacks: {self.raw.name})"


def summarise(lines: list[str]) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return "py-spy recorded no samples"
    out = [f"{samples} samples", "", "self time:"]
    out += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in own.most_common(TOP)]
    out += ["", "on the stack (total time):"]
    out += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in total.most_common(TOP)]
    return "\n".join(out)


def _short(frame: str) -> str:
    """``fetch (shared/queue/fetch.py:31)`` → ``fetch (shared/queue/fetch.py)``: one row per
    function rather than per line, paths cut to the package."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        root = str(Path(__file__).resolve().parent.parent) + "/"
        path = path.removeprefix(root)
    return f"{name} ({path})"
