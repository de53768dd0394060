"""What every process's Prometheus registry carries besides its own metrics.

- ``process_*`` (memory, CPU, open files, start time) and ``python_*`` (interpreter
  version, garbage collector): prometheus_client's own collectors, which only the global
  registry gets by default. Our registries are per app or per worker (tests run several
  in one process), so they are added here.
- ``ms8_build_info{process,version,commit} 1``: which build runs, to tell the old and
  new processes of a rolling deploy apart. The commit is ``MS8_BUILD_COMMIT`` (or the
  ``RAILWAY_GIT_COMMIT_SHA`` that Railway sets), else git's HEAD when the code runs from
  a checkout, else ``unknown``.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from prometheus_client import (
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.registry import CollectorRegistry

_ROOT = Path(__file__).resolve().parent.parent


@cache
def build_version() -> str:
    try:
        return version("ms8-jobs")
    except PackageNotFoundError:
        return "0.0.0"


@cache
def build_commit() -> str:
    for name in ("MS8_BUILD_COMMIT", "RAILWAY_GIT_COMMIT_SHA"):
        value = os.environ.get(name, "").strip()
        if value:
            return value[:40]
    if (_ROOT / ".git").exists():
        try:
            result = subprocess.run(["git", "-C", str(_ROOT), "rev-parse", "HEAD"],
                                    capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            return "unknown"
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()[:40]
    return "unknown"


def add_standard_metrics(registry: CollectorRegistry, process: str) -> None:
    """Process, platform and GC collectors, and the build info, on ``registry``."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    info = Gauge("ms8_build_info", "The build this process runs (always 1)",
                 ["process", "version", "commit"], registry=registry)
    info.labels(process, build_version(), build_commit()).set(1)
