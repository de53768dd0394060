"""``python -m api`` as a subprocess on a free port, for process-level tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class ApiProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def api_process(env: Mapping[str, str], log_path: Path, *, ready_timeout: float = 60.0
                ) -> Iterator[ApiProcess]:
    """Start the API, wait until it answers /health/live, and always stop it after."""
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), "MS8_API_HOST": "127.0.0.1",
                "MS8_LOG_FORMAT": "json", "MS8_API_SHUTDOWN_GRACE_SECONDS": "2", **env}
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, env=full_env,
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"api exited with {process.returncode}:\n"
                                     f"{log_path.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("api did not answer /health/live in time")
            time.sleep(0.1)
        yield ApiProcess(process, url, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
