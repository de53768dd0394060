"""The start-up mechanism in-process: a refusal is one line and 2, a crash is 1 and, with
JSON logs, one JSON line whose traceback is a field."""

from __future__ import annotations

import json

import pytest

from shared import startup
from shared.settings import SettingsError
from tests.unit.test_logging import restore_logging  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("restore_logging")


def fail_with(error: BaseException) -> int:
    raise error


def test_a_refusal_in_console_mode_is_prog_colon_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = startup.run("worker", lambda: fail_with(SettingsError("MS8_X must be\nsmall")),
                         env={"MS8_LOG_FORMAT": "console"})
    assert status == 2
    assert capsys.readouterr().err == "worker: MS8_X must be small\n"


def test_a_refusal_in_json_mode_is_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    status = startup.run(
        "api", lambda: fail_with(startup.Refusal("see postgresql://u:hunter2@h/db")),
        env={"MS8_LOG_FORMAT": "json"})
    assert status == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "hunter2" not in lines[0]
    record = json.loads(lines[0])
    assert (record["event"], record["process"], record["level"]) == (
        "cannot start", "api", "error")
    assert record["reason"] == "see postgresql://u:***@h/db"


def test_a_crash_exits_1_with_the_traceback_inside_one_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = startup.run("scheduler", lambda: fail_with(RuntimeError("boom")),
                         env={"MS8_LOG_FORMAT": "json"})
    assert status == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "crashed"
    assert "RuntimeError: boom" in record["exception"]


def test_a_database_given_up_on_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = startup.run("migrate", lambda: fail_with(ConnectionRefusedError("refused")),
                         env={"MS8_LOG_FORMAT": "json"})
    assert status == 1
    record = json.loads(capsys.readouterr().err)
    assert (record["event"], record["error"]) == ("database unreachable", "refused")


def test_a_bad_log_format_still_reports_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from shared.settings import Settings

    status = startup.run("worker", lambda: Settings.from_env({"MS8_LOG_FORMAT": "xml"}) and 0,
                         env={"MS8_LOG_FORMAT": "xml"})
    assert status == 2
    assert "MS8_LOG_FORMAT must be one of" in capsys.readouterr().err


def test_success_returns_the_status_of_main() -> None:
    assert startup.run("worker", lambda: 0, env={}) == 0


def test_an_installation_without_the_local_stack_says_to_set_database_url(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded server comes with a checkout (devstack/); an installed wheel, with no
    DATABASE_URL in dev mode, gets a setting error that says what to do."""
    import sys

    from shared.db import embedded
    from shared.settings import SettingsError

    monkeypatch.setitem(sys.modules, "devstack.embedded", None)  # import fails
    with pytest.raises(SettingsError, match="no embedded PostgreSQL.*set DATABASE_URL"):
        embedded()
