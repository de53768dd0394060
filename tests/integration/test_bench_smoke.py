"""The benchmark still runs: ``python -m bench --tiny`` end to end, on the test server.

Tiny sizes only prove that every scenario's code path works (databases created and
dropped, workers started and stopped, results written); no number is asserted, since
timings belong to the benchmark, not to the tests. Peers are measured when installed,
and must then show up in the results too: PGQueuer and Procrastinate with the ``bench``
extra, pg-boss and BullMQ with ``bench/node`` installed (``scripts/setup``, where Node.js
and npm exist), BullMQ with ``redis-server`` as well. With ``MS8_REQUIRE_BENCH_PEERS=1``
(CI) a missing peer is a failure, not a smaller run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from bench import node, redis_server
from bench.__main__ import SCENARIOS
from tests.conftest import ROOT, with_database

pytestmark = pytest.mark.slow


def _peers_installed() -> set[str]:
    """The peers this machine can measure, as the benchmark decides it."""
    found = set()
    if all(importlib.util.find_spec(name) for name in ("pgqueuer", "procrastinate")):
        found |= {"PGQueuer", "Procrastinate"}
    if node.missing("pg-boss") is None:
        found.add("pg-boss")
    if (node.missing("bullmq") is None and redis_server.redis_server() is not None
            and importlib.util.find_spec("redis")):
        found.add("BullMQ")
    return found


def test_ci_measures_every_peer() -> None:
    """CI installs every peer (scripts/setup --with-system-tools): a missing one is a
    broken install step, not a reason for a smaller benchmark."""
    if os.environ.get("MS8_REQUIRE_BENCH_PEERS") != "1":
        pytest.skip("MS8_REQUIRE_BENCH_PEERS is not set")
    assert _peers_installed() == {"PGQueuer", "Procrastinate", "pg-boss", "BullMQ"}


async def _bench_databases(server_url: str) -> list[str]:
    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'")
        return [row["datname"] for row in rows]
    finally:
        await conn.close()


@pytest.mark.timeout(480)  # five systems' workers started and stopped, Node's included
async def test_tiny_run_measures_every_scenario(server_url: str, tmp_path: Path) -> None:
    before = set(await _bench_databases(server_url))
    out = tmp_path / "results.json"
    env = {**os.environ, "BENCH_DATABASE_URL": server_url}
    # The run stops its own workers; were it killed, they die with it (PDEATHSIG).
    # Every scenario, the soak too (a run without --only leaves it out).
    only = [arg for name in SCENARIOS for arg in ("--only", name)]
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bench", "--tiny", "--explain", *only, "--json", str(out),
         "--log-dir", str(tmp_path / "logs")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=420, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| metric" in proc.stdout

    results = json.loads(out.read_text())
    metrics = results["metrics"]
    assert metrics["enqueue"]["values"]["ms8-jobs"] > 0
    assert metrics["fetch_full"]["values"]["ms8-jobs"] > 0
    assert "Index" in results["sections"]["explain"]  # the plans came back
    expected = {"enqueue", "drain_1", "drain_2", "latency_p50", "latency_p99"}
    ran = {"ms8-jobs", *_peers_installed()}
    for key in expected:
        assert ran <= set(metrics[key]["values"]), (key, metrics[key]["values"])
    idle = metrics.get("idle_statements") or metrics["idle_transactions"]
    assert ran <= set(idle["values"])
    assert metrics["drain_rss"]["values"]["ms8-jobs"] > 0
    # The nightly fan-out ran end to end: the stub, two workers, the schedule's firing.
    assert metrics["fanout"]["values"]["ms8-jobs"] > 0
    assert metrics["fanout_cpu_stub"]["values"]["ms8-jobs"] > 0
    assert "complete 50," in metrics["fanout"]["notes"]["ms8-jobs"]
    if importlib.util.find_spec("api.__main__"):
        assert metrics["api_single"]["values"]["ms8-jobs"] > 0
        assert metrics["api_many"]["values"]["ms8-jobs"] > 0
        # The API under load with workers draining: every accepted job completed.
        assert metrics["load_rate"]["values"]["ms8-jobs"] > 0
        assert metrics["load_p99"]["values"]["ms8-jobs"] >= metrics["load_p50"]["values"][
            "ms8-jobs"]
        assert "every accepted job completed" in metrics["load_drained"]["notes"]["ms8-jobs"]
    # Scale-out: 1, 2 and 4 workers draining; 1 and 2 API processes sending; each point
    # with its rate and the connections of each of its processes.
    points = {(p["kind"], p["processes"]): p for p in results["scale"]["points"]}
    expected_points = {("drain", 1), ("drain", 2), ("drain", 4)}
    if importlib.util.find_spec("api.__main__"):
        expected_points |= {("sends", 1), ("sends", 2)}
        assert points["sends", 2]["process_cpu_ms_per_1000"] > 0
    assert set(points) == expected_points
    for (_, count), point in points.items():
        assert point["rate"] > 0
        held = point["connections_per_process"][0]
        assert held is not None and len(held) == count and max(held) > 0
    assert "scale-out" in results["sections"]
    # The soak: readings at the start, while sending and at the end, each sized; a verdict.
    soak = results["soak"]
    labels = [r["label"] for r in soak["readings"]]
    assert labels[0] == "start" and labels[-1] == "end (drained)" and len(labels) >= 3
    end = soak["readings"][-1]
    assert end["sent"] == soak["jobs"] and end["backlog"] == 0
    assert end["history_bytes"] > 0 and end["jobs_index_bytes"] > 0 and end["fetch_ms"] > 0
    assert set(soak["flat"]) >= {"jobs_table", "history_table", "fetch"}
    assert metrics["soak_history"]["values"]["ms8-jobs"] > 0

    # Every database the run created is gone.
    assert set(await _bench_databases(server_url)) <= before
