"""The many-jobs shortcut (``api.bulk``) says yes only to bodies the generic path accepts,
with the very jobs the generic path builds, and the body it hands on is the validated one
(the idempotency fingerprint is taken from it)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from api import bulk
from api.errors import ApiError
from api.jobs import job_spec
from api.schemas import components, json_value, ref
from api.validator import SchemaViolation, Validator

MAX_JOBS = 5
VALIDATOR = Validator(components(MAX_JOBS), {"JsonValue": json_value})
CTX: Any = SimpleNamespace(settings=SimpleNamespace(max_jobs_per_request=MAX_JOBS))


def generic(value: Any) -> tuple[Any, list[Any]] | None:
    """What the generic path makes of a parsed body: (validated body, jobs), or None."""
    try:
        body = VALIDATOR.validate(ref("BulkSend"), value, "body")
        return body, [job_spec(item, f"jobs[{i}].") for i, item in enumerate(body["jobs"])]
    except (SchemaViolation, ApiError):
        return None


def fast(value: Any) -> bulk.Prepared | None:
    raw = orjson.dumps(value)
    return bulk.prepared(CTX, raw, orjson.loads(raw))


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                      st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=5), st.just("a\x00b"))
json_data = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=3) | st.just("k\x00"), inner, max_size=3), max_leaves=8)
# Valid values most of the time, so that many bodies are wholly valid; the edges often.
queue_names = st.one_of(
    st.just("mail"), st.sampled_from(["a", "q-1.x_y", "0" + "a" * 62]),
    st.sampled_from(["a" * 64, "", "Mail", "mail\n", "-mail", "mäil", "a b"]),
    st.integers(-5, 5), st.none())
priorities = st.one_of(
    st.integers(-1000, 1000), st.sampled_from([-1000, 1000, -1001, 1001, 5000]),
    st.sampled_from([2.0, 2.5, True, False, "1", None]))
other_options = st.fixed_dictionaries({}, optional={
    "retry_limit": st.integers(-1, 3), "delay": st.floats(0, 10), "unknown": st.just(1)})


@st.composite
def job_items(draw: st.DrawFn) -> Any:
    item: dict[str, Any] = {}
    if draw(st.booleans()) or draw(st.booleans()):
        item["queue"] = draw(queue_names)
    if draw(st.booleans()):
        item["data"] = draw(json_data)
    if draw(st.booleans()):
        item["priority"] = draw(priorities)
    if not draw(st.integers(0, 4)):
        item.update(draw(other_options))
    return item if draw(st.integers(0, 20)) else draw(st.sampled_from([[], "job", None]))


bodies = st.fixed_dictionaries(
    {"jobs": st.lists(job_items(), max_size=MAX_JOBS + 1)},
    optional={"extra": st.just(1)}) | st.sampled_from([[], None, {"jobs": "x"}])


@settings(max_examples=1500, deadline=None)
@given(bodies)
def test_the_shortcut_accepts_only_what_validation_accepts_with_the_same_jobs(
        value: Any) -> None:
    prepared = fast(value)
    if prepared is None:
        return
    accepted = generic(value)
    assert accepted is not None, value
    body, specs = accepted
    assert prepared.jobs.specs() == specs
    assert orjson.dumps(body, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        value, option=orjson.OPT_SORT_KEYS)


def test_the_common_shape_takes_the_shortcut() -> None:
    value = {"jobs": [{"queue": "mail", "data": {"n": i}, "priority": i - 2}
                      for i in range(MAX_JOBS)]}
    prepared = fast(value)
    assert prepared is not None
    assert prepared.jobs.specs() == generic(value)[1]  # type: ignore[index]


def test_anything_unusual_goes_the_generic_way() -> None:
    for value in (
        {"jobs": [{"queue": "mail", "priority": 2.0}]},  # valid, normalised by validation
        {"jobs": [{"queue": "mail", "retry_limit": 1}]},  # valid, an option it leaves out
        {"jobs": [{"queue": "mail", "data": "a\x00"}]},  # invalid: NUL
        {"jobs": [{"queue": "mail"}] * (MAX_JOBS + 1)},  # invalid: too many
        {"jobs": [{"queue": "mail\n"}]},  # invalid: the name
    ):
        assert fast(value) is None, value


def generic_one(value: Any) -> tuple[Any, Any] | None:
    """What the generic path makes of a single send's parsed body: (validated body, job)."""
    try:
        body = VALIDATOR.validate(ref("JobSpec"), value, "body")
        return body, job_spec(body)
    except (SchemaViolation, ApiError):
        return None


@settings(max_examples=1500, deadline=None)
@given(job_items())
def test_a_single_sends_shortcut_accepts_only_what_validation_accepts_with_the_same_job(
        value: Any) -> None:
    raw = orjson.dumps(value)
    spec = bulk.prepared_one(CTX, raw, orjson.loads(raw))
    if spec is None:
        return
    accepted = generic_one(value)
    assert accepted is not None, value
    body, expected = accepted
    assert spec == expected
    assert orjson.dumps(body, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        value, option=orjson.OPT_SORT_KEYS)


def test_a_plain_single_send_takes_the_shortcut() -> None:
    value = {"queue": "mail", "data": {"n": 1}, "priority": 3}
    raw = orjson.dumps(value)
    assert bulk.prepared_one(CTX, raw, value) == generic_one(value)[1]  # type: ignore[index]
    assert bulk.prepared_one(CTX, b'{"queue":"mail","delay":1}',
                             {"queue": "mail", "delay": 1}) is None
