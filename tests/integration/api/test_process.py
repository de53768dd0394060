"""``python -m api`` as a real process: the OpenAPI contract under schemathesis, the loud
warning of dev mode, and a clean stop with an event stream open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.api.server import ROOT, api_process

SECRET = "contract-secret-0123456789abcdefghij"
KEYS = {"MS8_API_KEYS": f"contract:{SECRET}:read,write", "MS8_ENV": "production"}


@pytest.mark.slow
def test_openapi_contract(db_url: str, tmp_path: Path) -> None:
    """Every operation, positive and negative data, stateful sequences: zero server errors
    and zero responses that break the schema (schemathesis, all checks)."""
    # Schemathesis sends wrong keys to every operation on purpose: no throttle for it.
    env = {"DATABASE_URL": db_url, "MS8_API_AUTH_FAILURES_PER_MINUTE": "100000", **KEYS}
    with api_process(env, tmp_path / "api.log") as api:
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{api.url}/openapi.json",
             "-H", f"Authorization: Bearer {SECRET}",
             # Event streams stay open until their job ends: tested in test_events.py.
             "--exclude-path-regex", "/events$",
             "--max-examples", os.environ.get("MS8_CONTRACT_EXAMPLES", "25"),
             "--seed", os.environ.get("MS8_CONTRACT_SEED", "20261128"),
             "--request-timeout", "15", "--workers", "1", "--no-color",
             "--report", "junit", "--report-dir", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.api.contract_hooks",
                 "PYTHONPATH": str(ROOT)},
        )
        log = api.log()
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "failures" not in result.stdout.splitlines()[-1]
    assert '"unexpected error"' not in log, log[-4000:]


def test_dev_mode_says_so_loudly(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url, "MS8_ENV": "dev", "MS8_API_KEYS": ""}
    with api_process(env, tmp_path / "api.log") as api:
        assert httpx.post(f"{api.url}/jobs", json={"queue": "q"}).status_code == 201
        log = api.log()
    assert "NO API KEY CONFIGURED" in log
    assert '"level": "warning"' in log or '"level":"warning"' in log


def test_production_without_keys_refuses_to_start(db_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_url, "MS8_ENV": "production", "MS8_API_KEYS": ""}
    result = subprocess.run([sys.executable, "-m", "api"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "MS8_API_KEYS" in result.stderr


def test_sigterm_with_a_stream_open(db_url: str, tmp_path: Path) -> None:
    with api_process({"DATABASE_URL": db_url, **KEYS}, tmp_path / "api.log") as api:
        headers = {"Authorization": f"Bearer {SECRET}"}
        with httpx.stream("GET", f"{api.url}/events", headers=headers, timeout=30) as stream:
            assert stream.status_code == 200
            api.process.send_signal(signal.SIGTERM)
            assert api.process.wait(20) == 0
        assert "password" not in api.log().lower()
