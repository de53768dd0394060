"""``python -m api`` as a real process: the OpenAPI contract under schemathesis, the loud
warning of dev mode, and a clean stop with an event stream open."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.api.server import ROOT, api_process
from tests.support import free_port

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
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    loud = [line for line in lines if "NO API KEY CONFIGURED" in line["event"]]
    assert [line["level"] for line in loud] == ["warning"], log[-3000:]
    assert "MS8_API_KEYS" in loud[0]["event"]


def test_production_without_keys_refuses_to_start(db_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_url, "MS8_ENV": "production", "MS8_API_KEYS": ""}
    result = subprocess.run([sys.executable, "-m", "api"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "MS8_API_KEYS" in result.stderr


def test_dev_without_keys_but_given_a_port_refuses_to_start(db_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_url, "MS8_ENV": "dev", "MS8_API_KEYS": "",
           "PORT": "8080"}
    env.pop("MS8_API_HOST", None)
    result = subprocess.run([sys.executable, "-m", "api"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "without a key" in result.stderr and "MS8_API_HOST=127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_on_double_colon_it_answers_over_ipv4_and_ipv6(db_url: str, tmp_path: Path) -> None:
    with api_process({"DATABASE_URL": db_url, **KEYS, "MS8_API_HOST": "::"},
                     tmp_path / "api.log") as api:
        port = api.url.rsplit(":", 1)[1]
        for host in ("127.0.0.1", "[::1]"):
            assert httpx.get(f"http://{host}:{port}/health/live", timeout=5).status_code == 200


def test_sigterm_with_a_stream_open(db_url: str, tmp_path: Path) -> None:
    with api_process({"DATABASE_URL": db_url, **KEYS}, tmp_path / "api.log") as api:
        headers = {"Authorization": f"Bearer {SECRET}"}
        with httpx.stream("GET", f"{api.url}/events", headers=headers, timeout=30) as stream:
            assert stream.status_code == 200
            api.process.send_signal(signal.SIGTERM)
            assert api.process.wait(20) == 0
        assert "password" not in api.log().lower()


def _start_api(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    full = {**os.environ, "MS8_LOG_FORMAT": "json", "PORT": str(free_port()),
            "MS8_API_HOST": "127.0.0.1", **KEYS, **env}
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, env=full,
                                stdout=log, stderr=subprocess.STDOUT)


def _wait_for_line(process: subprocess.Popen[bytes], log_path: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in log_path.read_text(errors="replace"):
        assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_an_api_still_waiting_for_its_database(
        tmp_path: Path, sig: signal.Signals) -> None:
    """Start-up while the database is down waits for it, but never past a stop."""
    log_path = tmp_path / "api.log"
    nobody = f"postgresql://ms8:x@127.0.0.1:{free_port()}/ms8"
    process = _start_api({"DATABASE_URL": nobody}, log_path)
    try:
        _wait_for_line(process, log_path, "database unreachable")
        process.send_signal(sig)
        code = process.wait(15)  # raises TimeoutExpired, failing the test, if ignored
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Stopped before it served: by the signal's default action, or as an interrupt.
    expected = {0, -signal.SIGTERM} if sig == signal.SIGTERM else {0, 130}
    assert code in expected, log_path.read_text(errors="replace")[-3000:]


@pytest.mark.parametrize("query, names", [("sslmode=bogus", "sslmode"),
                                          ("sslrootcert=/nonexistent/ca.pem&sslmode=verify-full",
                                           "sslrootcert")])
def test_a_database_url_that_cannot_work_stops_the_api(
        tmp_path: Path, query: str, names: str) -> None:
    log_path = tmp_path / "api.log"
    url = f"postgresql://ms8:x@127.0.0.1:{free_port()}/ms8?{query}"
    process = _start_api({"DATABASE_URL": url}, log_path)
    try:
        code = process.wait(30)  # never a retry loop on a configuration error
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = log_path.read_text(errors="replace")
    assert code == 2, log[-3000:]
    assert names in log
    assert "Traceback" not in log, log[-3000:]
    assert "x@" not in log  # the password stays out
