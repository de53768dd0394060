"""Worker settings and flags: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

import pytest

from shared.settings import SettingsError
from worker.cli import build_parser, explain, overlay
from worker.handlers import HandlerError, Handlers, load, select
from worker.settings import WorkerSettings


def test_defaults_are_quiet_when_idle_and_safe() -> None:
    s = WorkerSettings.from_env({})
    assert s.queues == {} and s.concurrency == 10
    assert (s.poll_only, s.poll_seconds, s.listen_check_seconds) == (False, 60.0, 30.0)
    assert s.heartbeat_seconds * 2 <= s.stall_seconds
    assert s.rescue_seconds == s.stall_seconds and s.metrics_port is None
    assert s.worker_id.count("-") >= 2
    assert s.claim_commit == "durable"  # the unflushed claim is an explicit choice
    assert WorkerSettings.from_env({"MS8_CLAIM_COMMIT": "Async"}).claim_commit == "async"
    assert WorkerSettings.from_env({"MS8_POLL_ONLY": "yes"}).poll_seconds == 2.0


def test_queues_with_and_without_concurrency() -> None:
    s = WorkerSettings.from_env({
        "MS8_WORKER_QUEUES": "collect-analytics=20, fresh-data ,daily-batch=1",
        "MS8_WORKER_CONCURRENCY": "3"})
    assert dict(s.queues) == {"collect-analytics": 20, "fresh-data": 3, "daily-batch": 1}
    assert s.concurrency_of({"ignored": object()}) == dict(s.queues)
    assert WorkerSettings.from_env({}).concurrency_of({"b": 1, "a": 2}) == {"a": 10, "b": 10}


def test_a_handler_declared_concurrency_is_its_queue_default() -> None:
    declared = {"collect-analytics": 100}
    handled = {"collect-analytics": object(), "echo": object()}
    every = WorkerSettings.from_env({})
    assert every.concurrency_of(handled, declared) == {"collect-analytics": 100, "echo": 10}
    named = WorkerSettings.from_env({"MS8_WORKER_QUEUES": "collect-analytics,echo=3"})
    assert named.concurrency_of(handled, declared) == {"collect-analytics": 100, "echo": 3}
    # Said by name, or for every queue: what the operator set wins over the handler.
    by_name = WorkerSettings.from_env({"MS8_WORKER_QUEUES": "collect-analytics=7"})
    assert by_name.concurrency_of(handled, declared) == {"collect-analytics": 7}
    given = WorkerSettings.from_env({"MS8_WORKER_CONCURRENCY": "4"})
    assert given.concurrency_of(handled, declared) == {"collect-analytics": 4, "echo": 4}
    listed = WorkerSettings.from_env({"MS8_WORKER_CONCURRENCY": "4",
                                      "MS8_WORKER_QUEUES": "collect-analytics"})
    assert listed.concurrency_of(handled, declared) == {"collect-analytics": 4}


@pytest.mark.parametrize(("env", "message"), [
    ({"MS8_WORKER_QUEUES": "Bad"}, "MS8_WORKER_QUEUES: 'Bad' is not a queue name"),
    ({"MS8_WORKER_QUEUES": "a=x"}, "concurrency of 'a' must be a whole number, got 'x'"),
    ({"MS8_WORKER_QUEUES": "a=0"}, "concurrency of 'a' must be between 1 and 10000, got 0"),
    ({"MS8_WORKER_QUEUES": "a,a=2"}, "queue 'a' is listed twice"),
    ({"MS8_WORKER_CONCURRENCY": "-1"}, "MS8_WORKER_CONCURRENCY must be between"),
    ({"MS8_HEARTBEAT_SECONDS": "31"}, "MS8_HEARTBEAT_SECONDS (31) must be at most half"),
    ({"MS8_POLL_SECONDS": "soon"}, "MS8_POLL_SECONDS must be a number, got 'soon'"),
    ({"MS8_WORKER_METRICS_PORT": "70000"}, "MS8_WORKER_METRICS_PORT must be between"),
    ({"MS8_WORKER_FORGET_SECONDS": "10"}, "MS8_WORKER_FORGET_SECONDS (10) must be at least"),
    ({"MS8_WORKER_ID": "x" * 201}, "MS8_WORKER_ID must be at most 200 characters"),
    ({"MS8_POLL_ONLY": "maybe"}, "MS8_POLL_ONLY must be true or false, got 'maybe'"),
    ({"MS8_CLAIM_COMMIT": "off"}, "MS8_CLAIM_COMMIT must be one of async, durable, got 'off'"),
])
def test_bad_values_are_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        WorkerSettings.from_env(env)
    assert message in str(error.value)


def test_flags_override_the_environment_and_errors_name_both() -> None:
    args = build_parser().parse_args([
        "--queues", "noop=50", "--poll-only", "--grace", "3", "--metrics-port", "9101",
        "--no-maintenance", "--id", "bench-1", "--heartbeat", "1", "--stall", "4"])
    env = overlay(args, {"MS8_WORKER_QUEUES": "echo", "MS8_WORKER_GRACE_SECONDS": "30"})
    s = WorkerSettings.from_env(env)
    assert dict(s.queues) == {"noop": 50} and s.poll_only and not s.maintenance
    assert (s.grace_seconds, s.metrics_port, s.worker_id) == (3.0, 9101, "bench-1")
    assert (s.heartbeat_seconds, s.stall_seconds) == (1.0, 4.0)
    with pytest.raises(SettingsError) as error:
        WorkerSettings.from_env(overlay(build_parser().parse_args(["--grace", "-1"]), {}))
    assert explain(error.value).startswith("MS8_WORKER_GRACE_SECONDS (--grace) must be")


def test_handlers_register_once_per_queue_and_selection_names_what_exists() -> None:
    handlers = Handlers()

    @handlers.register("one")
    async def one(ctx: object) -> None:
        return None

    with pytest.raises(HandlerError, match="queue 'one' already has a handler"):
        @handlers.register("one")
        async def other(ctx: object) -> None:
            return None

    with pytest.raises(HandlerError, match="is not a queue name"):
        handlers.register("Not A Queue")
    with pytest.raises(HandlerError, match="is not a queue name"):
        handlers.register("noop\n")  # "$" alone would let a trailing newline through
    with pytest.raises(HandlerError, match="concurrency of 'two' must be a whole number"):
        handlers.register("two", concurrency=0)

    @handlers.register("three", concurrency=30)
    async def three(ctx: object) -> None:
        return None

    assert dict(handlers.concurrencies()) == {"three": 30}
    assert select(handlers.snapshot(), ["one"]) == {"one": one}
    with pytest.raises(HandlerError, match=r"no handler for queue 'two' \(handlers exist for: one"):
        select(handlers.snapshot(), ["two"])
    assert {"noop", "sleep", "fail", "echo"} <= set(load())
    with pytest.raises(HandlerError, match="cannot import handler module 'no.such.module'"):
        load(["no.such.module"])


def test_help_names_every_setting_with_the_default_the_code_computes() -> None:
    """--help is generated from the settings: every variable WorkerSettings reads is in
    it, and a default changed in the code changes the text."""
    import re
    from pathlib import Path

    import worker.settings

    text = build_parser().format_help()
    read = set(re.findall(r'"(MS8_[A-Z_]+)"', Path(worker.settings.__file__).read_text()))
    assert read and not {name for name in read if name not in text}
    assert "MS8_COMPLETE_WINDOW_MS (5)" in text and "MS8_MAX_RUN_SECONDS (21600)" in text
    assert "safety-net poll interval (60; 2 in poll-only mode)" in " ".join(text.split())
