"""`python -m devstack` (what scripts/up runs) brings the stack up and down as processes."""

from __future__ import annotations

import asyncio
import signal

import httpx

from tests.e2e.processes import Processes
from tests.support import free_port


async def test_the_stack_runs_a_job_sent_over_http_and_stops_cleanly(
    processes: Processes,
) -> None:
    port, stub_port = free_port(), free_port()
    stack = processes.start("devstack", "--workers", "1", "--port", str(port),
                            "--stub-port", str(stub_port), name="devstack",
                            MS8_LOG_FORMAT="json")
    await stack.wait_for(lambda: any("api ready" in line for line in stack.lines),
                         what="the api to be ready")
    await stack.wait_for(lambda: any("worker started" in line for line in stack.lines),
                         what="the worker to start")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        sent = (await client.post("/jobs", json={"queue": "echo", "data": {"n": 7}})).json()

        async def state() -> str:
            return (await client.get(f"/jobs/{sent['id']}")).json()["state"]

        deadline = asyncio.get_running_loop().time() + 30
        while await state() != "completed":
            assert asyncio.get_running_loop().time() < deadline, "the job never completed"
            await asyncio.sleep(0.05)
        job = (await client.get(f"/jobs/{sent['id']}")).json()
        assert job["output"]["data"] == {"n": 7}

        # "Run now" on the nightly schedule runs a real batch over the seeded user-roles.
        fired = (await client.post("/schedules/daily-batch/run")).json()
        night = fired["fire_time"][:10]

        async def summary() -> dict[str, object] | None:
            answer = await client.get(f"/nightly-runs/{night}")
            return answer.json()["summary"] if answer.status_code == 200 else None

        deadline = asyncio.get_running_loop().time() + 120
        while (done := await summary()) is None:
            assert asyncio.get_running_loop().time() < deadline, "the night never finished"
            await asyncio.sleep(0.2)
        assert (done["total"], done["complete"], done["failed"]) == (300, 300, 0)
        snapshot = (await client.get("/user-roles/300/snapshot")).json()
        assert (snapshot["status"], snapshot["day"]) == ("complete", night)
    assert any(f"microservices stub: http://127.0.0.1:{stub_port}/" in line
               for line in stack.lines)
    await stack.wait_for(lambda: any("Uvicorn running" in line and f":{stub_port}" in line
                                     for line in stack.lines), what="the stub to listen")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stub_port}") as stub:
        answer = await stub.get("/skills-engine/user-roles/1")
        assert answer.status_code == 200 and answer.json()["source"] == "skills-engine"
    assert await stack.stop(signal.SIGINT) == 0
    assert any("scheduler stopped" in line for line in stack.lines)
