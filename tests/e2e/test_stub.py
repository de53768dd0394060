"""``python -m stub`` as a real server: the source contract, its modes, its admin endpoint."""

from __future__ import annotations

import asyncio
import json
import signal

import httpx
import orjson
import pytest

from tests.stub_server import StubServer, running_stub
from tests.support import wait_until

SOURCES = ("skills-engine", "course-builder", "assessment", "learner-ai")


async def get(stub: StubServer, path: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stub.url, timeout=10) as client:
        return await client.get(path, **kwargs)  # type: ignore[arg-type]


async def test_each_source_answers_the_same_small_json_for_a_user_role_every_time() -> None:
    async with running_stub("--latency-ms", "0") as stub:
        first = {s: (await get(stub, f"/{s}/user-roles/1042")) for s in SOURCES}
        for source, answer in first.items():
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json"
            assert len(answer.content) < 2048
            data = answer.json()
            assert data["source"] == source and data["user_role_id"] == "1042"
            assert data["metrics"] and all(isinstance(v, int | float)
                                           for v in data["metrics"].values())
            assert (await get(stub, f"/{source}/user-roles/1042")).content == answer.content
        other = (await get(stub, "/skills-engine/user-roles/1043")).json()
        assert other["metrics"] != first["skills-engine"].json()["metrics"]
        counters = await stub.counters("skills-engine")
        assert counters["received"] == counters["ok"] == 3

    async with running_stub("--latency-ms", "0", "--seed", "99") as again:
        assert (await get(again, "/assessment/user-roles/1042")).content == (
            first["assessment"].content)


async def test_unknown_sources_routes_and_methods_are_json_errors() -> None:
    async with running_stub("--latency-ms", "0", "--sources", "alpha,beta") as stub:
        assert (await get(stub, "/health")).json() == {"status": "ok"}
        assert (await get(stub, "/alpha/user-roles/1")).status_code == 200
        unknown = await get(stub, "/skills-engine/user-roles/1")
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "not_found"
        assert "alpha, beta" in unknown.json()["message"]
        assert (await get(stub, "/alpha/nothing")).status_code == 404
        async with httpx.AsyncClient(base_url=stub.url) as client:
            wrong = await client.post("/alpha/user-roles/1")
        assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
        assert set(await stub.sources()) == {"alpha", "beta"}


async def test_a_user_role_id_not_in_ascii_digits_names_no_user_role() -> None:
    """``١`` or ``+1`` is not user-role 1 (int() would say it is), nor ``01``."""
    async with running_stub("--latency-ms", "0") as stub:
        for raw in ("%D9%A1", "%EF%BC%91", "+1", "01", "-1", "1.0", "%C2%B2", "1e3", "x"):
            answer = await get(stub, f"/assessment/user-roles/{raw}")
            assert answer.status_code == 400, (raw, answer.text)
            assert answer.json()["code"] == "invalid_parameter"
            assert answer.json()["field"] == "user_role_id"
        assert (await stub.counters("assessment"))["received"] == 0
        assert (await get(stub, "/assessment/user-roles/1")).status_code == 200


async def fetch_statuses(stub: StubServer, ids: list[int]) -> dict[int, int]:
    async with httpx.AsyncClient(base_url=stub.url, timeout=10) as client:
        answers = await asyncio.gather(
            *(client.get(f"/assessment/user-roles/{i}") for i in ids))
    for answer in answers:
        if answer.status_code == 503:
            assert answer.json()["code"] == "unavailable"
    return {i: a.status_code for i, a in zip(ids, answers, strict=True)}


async def test_failures_are_drawn_at_the_rate_and_the_same_for_the_same_seed() -> None:
    ids = list(range(200))
    async with running_stub("--latency-ms", "0", "--failure-rate", "0.5", "--seed", "7") as stub:
        first = await fetch_statuses(stub, ids)
        failed = {i for i, status in first.items() if status == 503}
        assert set(first.values()) == {200, 503}
        assert 60 < len(failed) < 140
        counters = await stub.counters("assessment")
        assert counters == {**counters, "received": 200, "failed": len(failed),
                            "ok": 200 - len(failed)}

        # The draws start over after a reset: the same requests fail, in any order.
        await stub.reset()
        again = await fetch_statuses(stub, ids[::-1])
        assert {i for i, status in again.items() if status == 503} == failed
        # A retry draws again: a failed user-role does not fail for ever.
        retried = await fetch_statuses(stub, sorted(failed))
        assert 200 in retried.values()

    async with running_stub("--latency-ms", "0", "--failure-rate", "0.5", "--seed", "8") as other:
        other_failed = {i for i, s in (await fetch_statuses(other, ids)).items() if s == 503}
        assert other_failed != failed


async def test_a_hanging_source_answers_nothing_until_the_client_gives_up() -> None:
    async with running_stub("--latency-ms", "0", "--source", "assessment:mode=hang") as stub:
        with pytest.raises(httpx.ReadTimeout):
            await get(stub, "/assessment/user-roles/1", timeout=0.5)
        counters = await stub.counters("assessment")
        assert counters["received"] == counters["hung"] == 1
        assert counters["ok"] == counters["failed"] == 0
        await wait_until(lambda: _hanging(stub, "assessment", 0), message="the hang to end")
        assert (await get(stub, "/skills-engine/user-roles/1")).status_code == 200

        # Stopping answers the requests it holds instead of waiting for their clients.
        async with httpx.AsyncClient(base_url=stub.url, timeout=60) as client:
            held = asyncio.create_task(client.get("/assessment/user-roles/2"))
            await wait_until(lambda: _hanging(stub, "assessment", 1), message="a held request")
            assert await stub.process.stop(signal.SIGTERM, timeout=20) == 0
            assert (await held).status_code == 503
        assert not stub.process.find("Exception in ASGI application")


async def _hanging(stub: StubServer, source: str, n: int) -> bool:
    return (await stub.counters(source))["hanging"] == n


async def test_down_garbage_and_huge_modes() -> None:
    flags = ["--latency-ms", "0", "--source", "course-builder:mode=down",
             "--source", "learner-ai:mode=garbage,latency_ms=5", "--source", "assessment:mode=huge"]
    async with running_stub(*flags) as stub:
        for _ in range(3):
            down = await get(stub, "/course-builder/user-roles/5")
            assert down.status_code == 503 and down.json()["code"] == "unavailable"
        assert (await stub.counters("course-builder"))["failed"] == 3

        garbage = await get(stub, "/learner-ai/user-roles/5")
        assert garbage.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            garbage.json()
        assert (await stub.counters("learner-ai"))["garbage"] == 1

        huge = await get(stub, "/assessment/user-roles/5")
        assert huge.status_code == 200 and len(huge.content) > 9_000_000
        data = orjson.loads(huge.content)
        assert data["user_role_id"] == "5" and len(data["history"]) > 10_000
        assert (await stub.counters("assessment"))["ok"] == 1


async def test_a_dripping_source_sends_a_few_bytes_at_a_time() -> None:
    async with running_stub("--latency-ms", "0", "--source", "assessment:mode=drip") as stub:
        whole = (await get(stub, "/skills-engine/user-roles/8")).content
        await stub.set("skills-engine", mode="drip")
        async with httpx.AsyncClient(base_url=stub.url, timeout=10) as client:
            async with client.stream("GET", "/skills-engine/user-roles/8") as answer:
                assert answer.status_code == 200
                assert answer.headers["content-length"] == str(len(whole))
                received = b""
                async for chunk in answer.aiter_raw():
                    assert len(chunk) <= 8
                    received += chunk
                    if len(received) >= 8:
                        break
        assert whole.startswith(received) and len(received) < len(whole)
        counters = await stub.counters("skills-engine")
        assert counters["received"] == 2 and counters["ok"] == 1  # the cut one is not ok


async def test_admin_changes_apply_to_the_next_requests_and_log_one_line_each() -> None:
    async with running_stub("--latency-ms", "0", "--failure-rate", "0") as stub:
        path = "/skills-engine/user-roles/3"
        assert (await get(stub, path)).status_code == 200
        changed = await stub.set("skills-engine", mode="down", latency_ms=1)
        assert changed["mode"] == "down" and changed["latency_ms"] == 1
        assert changed["failure_rate"] == 0
        assert (await get(stub, path)).status_code == 503
        await stub.set("skills-engine", mode="ok", failure_rate=1)
        assert (await get(stub, path)).status_code == 503
        await stub.set("skills-engine", failure_rate=0)
        assert (await get(stub, path)).status_code == 200
        assert (await get(stub, "/assessment/user-roles/3")).status_code == 200

        counters = await stub.counters("skills-engine")
        assert {k: counters[k] for k in ("received", "ok", "failed")} == {
            "received": 4, "ok": 2, "failed": 2}
        changes = stub.process.find("source changed")
        assert [c["source"] for c in changes] == ["skills-engine"] * 3
        assert changes[0]["mode"] == "down"
        assert not any("user-roles" in json.dumps(e) for e in stub.process.logs())

        await stub.reset()
        sources = await stub.sources()
        assert all(c == 0 for s in sources.values() for c in s["counters"].values())
        assert sources["skills-engine"]["latency_ms"] == 1  # the config stays
        await stub.reset(config=True)
        assert (await stub.sources())["skills-engine"]["latency_ms"] == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"latency_ms": -1}, "latency_ms"),
    ({"latency_ms": "fast"}, "latency_ms"),
    ({"failure_rate": 1.5}, "failure_rate"),
    ({"failure_rate": True}, "failure_rate"),
    ({"mode": "sleepy"}, "mode"),
    ({"colour": "red"}, "colour"),
    ({"latency_ms": 5, "mode": "sleepy"}, "mode"),
])
async def test_bad_admin_input_is_refused_naming_the_field(
    body: dict[str, object], field: str,
) -> None:
    async with running_stub("--latency-ms", "0") as stub:
        before = (await stub.sources())["assessment"]
        answer = await stub.admin.patch("/_admin/sources/assessment", json=body)
        assert answer.status_code == 400
        assert answer.json()["code"] == "invalid_body"
        assert answer.json()["field"] == field
        assert field in answer.json()["message"]
        assert (await stub.sources())["assessment"] == before


async def test_malformed_admin_requests_are_4xx_json() -> None:
    async with running_stub("--latency-ms", "0") as stub:
        admin = stub.admin
        not_json = await admin.patch("/_admin/sources/assessment", content=b"{mode: hang")
        assert not_json.status_code == 400 and not_json.json()["code"] == "malformed_json"
        a_list = await admin.patch("/_admin/sources/assessment", json=["hang"])
        assert a_list.status_code == 400 and a_list.json()["code"] == "invalid_body"
        unknown = await admin.patch("/_admin/sources/nope", json={"mode": "hang"})
        assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
        bad_reset = await admin.post("/_admin/reset", json={"config": "yes"})
        assert bad_reset.status_code == 400 and bad_reset.json()["field"] == "config"
        assert (await admin.post("/_admin/reset")).status_code == 200  # no body: counters
        wrong = await admin.get("/_admin/reset")
        assert wrong.status_code == 405
