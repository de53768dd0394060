"""`python -m devstack` (what scripts/up runs) brings the stack up and down as processes."""

from __future__ import annotations

import asyncio
import signal
import socket

import httpx

from tests.e2e.processes import Processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_stack_runs_a_job_sent_over_http_and_stops_cleanly(
    processes: Processes,
) -> None:
    port = free_port()
    stack = processes.start("devstack", "--workers", "1", "--port", str(port),
                            name="devstack", MS8_LOG_FORMAT="json")
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
    assert await stack.stop(signal.SIGINT) == 0
    assert any("scheduler stopped" in line for line in stack.lines)
