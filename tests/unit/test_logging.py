"""Logs never carry secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from shared.logging import configure_logging, get_logger, mask_secrets


def test_mask_secrets_hides_url_passwords() -> None:
    assert mask_secrets("postgresql://ms8:s3cr3t@127.0.0.1:5432/db") == (
        "postgresql://ms8:***@127.0.0.1:5432/db")
    assert mask_secrets("no secret here") == "no secret here"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    handlers = logging.getLogger().handlers[:]
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers[:] = handlers


@pytest.mark.usefixtures("restore_logging")
def test_json_logs_mask_secret_keys_and_urls(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "info", "json")
    get_logger("t").info(
        "connecting", url="postgresql://u:pw123@h/db", password="pw123", api_key="k-999", n=3)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert "pw123" not in line and "k-999" not in line
    assert record["event"] == "connecting" and record["n"] == 3 and record["process"] == "test"


@pytest.mark.usefixtures("restore_logging")
def test_secrets_stay_masked_on_every_line_and_odd_values_still_render(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Key decisions are remembered between lines, never a value: each line is masked."""
    configure_logging("test", "info", "json")
    log = get_logger("t")
    for secret in ("first-pw", "second-pw"):
        log.info("again", password=secret, dsn=f"postgresql://u:{secret}@h/db",
                 note=f"see postgres://u:{secret}@h/db", queue="q")
    log.info("odd", big=2**70, keys={1: "one"}, when=None)
    lines = capsys.readouterr().err.strip().splitlines()
    assert not any(secret in line for line in lines for secret in ("first-pw", "second-pw"))
    assert json.loads(lines[1])["note"] == "see postgres://u:***@h/db"
    assert json.loads(lines[1])["queue"] == "q"
    odd = json.loads(lines[2])
    assert odd["big"] == 2**70 and odd["keys"] == {"1": "one"} and odd["when"] is None


@pytest.mark.usefixtures("restore_logging")
def test_http_requests_are_not_a_log_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "info", "json")
    logging.getLogger("httpx").info('HTTP Request: GET http://source/user-roles/1 "200 OK"')
    logging.getLogger("httpx").warning("something worth a look")
    err = capsys.readouterr().err
    assert "HTTP Request" not in err and "something worth a look" in err


@pytest.mark.usefixtures("restore_logging")
def test_a_cached_logger_follows_stderr_when_it_is_replaced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A logger first used while stderr was one stream writes to the stream stderr is now,
    not to the old one (closed by then: captured output of an earlier command)."""
    import io
    import sys

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("test", "info", "json")
    log = get_logger("cached")
    log.info("one")
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    log.info("two")
    logging.getLogger("stdlib").warning("three")
    lines = [json.loads(line)["event"] for line in second.getvalue().splitlines()]
    assert lines == ["two", "three"]
