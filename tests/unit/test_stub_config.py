"""The stub's flags, config checks, data and failure draws, without a server."""

from __future__ import annotations

import json

import orjson
import pytest

from analytics.settings import DEFAULT_SOURCE_NAMES
from shared.settings import SettingsError
from stub import payload
from stub.__main__ import main, parser, sources_from
from stub.config import DEFAULT_SOURCES, InvalidSetting, SourceConfig, parse_override
from stub.state import Source, Sources


def flags(*argv: str) -> Sources:
    return sources_from(parser({}).parse_args(argv))


def test_defaults_are_four_sources_at_50_ms_that_never_fail() -> None:
    sources = flags()
    assert tuple(sources.by_name) == DEFAULT_SOURCES
    assert {s.config for s in sources.by_name.values()} == {SourceConfig(50, 0.0, "ok")}
    assert parser({"MS8_STUB_PORT": "9123"}).parse_args([]).port == 9123
    assert parser({}).parse_args([]).port == 8090


def test_per_source_overrides_apply_over_the_defaults() -> None:
    sources = flags("--sources", "a,b", "--latency-ms", "10", "--failure-rate", "0.1",
                    "--source", "b:latency_ms=200,failure_rate=0.5,mode=hang", "--seed", "3")
    assert sources.get("a").config == SourceConfig(10, 0.1, "ok")  # type: ignore[union-attr]
    assert sources.get("b").config == SourceConfig(200, 0.5, "hang")  # type: ignore[union-attr]
    assert sources.seed == 3


@pytest.mark.parametrize(("argv", "field"), [
    (["--failure-rate", "2"], "failure_rate"),
    (["--latency-ms", "-5"], "latency_ms"),
    (["--source", "nope:mode=hang"], "source"),
    (["--source", "assessment:mode=sleepy"], "mode"),
    (["--source", "assessment:colour=red"], "colour"),
    (["--source", "assessment:latency_ms=fast"], "latency_ms"),
    # Numbers as written: int() and float() would take each of these.
    (["--latency-ms", "٥٠"], "latency_ms"),
    (["--failure-rate", "+0.5"], "failure_rate"),
    (["--source", "assessment:latency_ms=１０"], "latency_ms"),
    (["--source", "assessment:failure_rate=5e-1"], "failure_rate"),
    (["--source", "assessment:latency_ms=1_0"], "latency_ms"),
    (["--source", "assessment"], "source"),
    (["--source", "assessment:mode"], "mode"),
    (["--sources", " , "], "sources"),
])
def test_bad_flags_name_what_is_wrong(argv: list[str], field: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidSetting) as raised:
        flags(*argv)
    assert raised.value.field == field
    assert main(argv) == 2
    assert field in capsys.readouterr().err


def test_a_change_is_checked_whole_before_it_applies() -> None:
    config = SourceConfig()
    assert config.changed({"latency_ms": 0.5, "mode": "drip"}) == SourceConfig(0.5, 0.0, "drip")
    for bad in ({"latency_ms": None}, {"failure_rate": float("nan")}, {"mode": 3},
                {"latency_ms": 10**9}, {"failure_rate": -0.1}):
        with pytest.raises(InvalidSetting):
            config.changed(bad)
    assert parse_override("x: mode = down ") == ("x", {"mode": "down"})


def test_data_is_small_stable_json_that_differs_by_source_and_user_role() -> None:
    body = payload.body("assessment", "7")
    assert body == payload.body("assessment", "7") and len(body) < 2048
    assert orjson.loads(body)["metrics"] != orjson.loads(payload.body("assessment", "8"))[
        "metrics"]
    assert set(orjson.loads(payload.body("learner-ai", "7"))["metrics"]) != set(
        orjson.loads(body)["metrics"])
    assert orjson.loads(payload.body("custom", "7"))["metrics"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(payload.garbage("assessment", "7"))
    huge = payload.huge("assessment", "7")
    assert 9_000_000 < len(huge) < 12_000_000 and orjson.loads(huge)["user_role_id"] == "7"


def failures(source: Source, seed: int, ids: list[str]) -> set[str]:
    return {i for i in ids if source.fails(seed, i)}


def test_failure_draws_depend_on_seed_user_role_and_attempt_not_on_order() -> None:
    ids = [str(i) for i in range(1000)]
    source = Source("assessment", SourceConfig(failure_rate=0.3))
    first = failures(source, 1, ids)
    assert 200 < len(first) < 400
    source.reset(config=False)
    assert failures(source, 1, ids[::-1]) == first
    second_attempt = failures(source, 1, ids)
    assert second_attempt != first  # a retry draws again
    source.reset(config=False)
    assert failures(source, 2, ids) != first
    assert failures(Source("x", SourceConfig(failure_rate=0)), 1, ids) == set()
    assert failures(Source("x", SourceConfig(failure_rate=1)), 1, ids) == set(ids)


def test_reset_can_restore_the_configs_from_the_flags() -> None:
    sources = flags("--latency-ms", "5")
    source = sources.get("assessment")
    assert source is not None
    source.config = source.config.changed({"mode": "down"})
    source.counters.received = 4
    sources.reset()
    assert source.counters.received == 0 and source.config.mode == "down"
    sources.reset(config=True)
    assert source.config == SourceConfig(5, 0.0, "ok")


def test_the_stub_serves_the_sources_the_analytics_call_by_default() -> None:
    assert DEFAULT_SOURCE_NAMES == DEFAULT_SOURCES


@pytest.mark.parametrize("argv", [["--port", "٨٠٩٠"], ["--port", "+8090"], ["--seed", "-1"],
                                  ["--seed", "٧"], ["--port", "70000"]])
def test_whole_number_flags_are_ascii_digits(argv: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser({}).parse_args(argv)
    assert exited.value.code == 2
    assert argv[0] in capsys.readouterr().err


@pytest.mark.parametrize("port", ["٨٠٩٠", "+8090", "8090.0", "70000"])
def test_the_port_variable_is_ascii_digits(port: str) -> None:
    with pytest.raises(SettingsError, match="MS8_STUB_PORT"):
        parser({"MS8_STUB_PORT": port})
