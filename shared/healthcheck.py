"""``python -m shared.healthcheck``: the image's HEALTHCHECK, right for whichever process
the container runs (one image serves every service).

It reads the command of the container's first process (``/proc/1/cmdline``) and asks:

- ``python -m api``: ``GET /health/live`` on ``$PORT`` (8000), which needs no key;
- ``python -m worker`` with metrics (``--metrics-port`` or ``MS8_WORKER_METRICS_PORT``):
  its metrics endpoint;
- anything else (the scheduler, a worker without metrics, the migration): nothing to
  ask; it is alive while it runs.

Exit 0 healthy, 1 not. Standard library only: it runs every few seconds.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence

TIMEOUT = 3.0


def url_for(command: Sequence[str], env: Mapping[str, str]) -> str | None:
    """What to ask a process started with ``command``; None: nothing."""
    module = _module(command)
    if module == "api":
        return f"http://127.0.0.1:{env.get('PORT') or '8000'}/health/live"
    if module == "worker":
        port = _flag(command, "--metrics-port") or env.get("MS8_WORKER_METRICS_PORT")
        return f"http://127.0.0.1:{port}/metrics" if port else None
    return None


def _module(command: Sequence[str]) -> str | None:
    for first, second in zip(command, command[1:], strict=False):
        if first == "-m":
            return second
    return None


def _flag(command: Sequence[str], name: str) -> str | None:
    for i, word in enumerate(command):
        if word == name and i + 1 < len(command):
            return command[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def first_command() -> list[str]:
    try:
        with open("/proc/1/cmdline", "rb") as f:
            return [part.decode() for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def probe(url: str) -> int:
    """0 when ``url`` answers 200, else 1 (saying why on stderr)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:  # HTTPError (a 503) included
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1


def main() -> int:
    url = url_for(first_command(), os.environ)
    return 0 if url is None else probe(url)


if __name__ == "__main__":
    sys.exit(main())
