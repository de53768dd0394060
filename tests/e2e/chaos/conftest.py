"""Fixtures of the chaos suite: ``lab`` (a cluster of the test's own, the stub, processes)
and ``scale``.

Every scenario carries the ``chaos`` marker. Those marked ``chaos(ci=False)`` run only in
the whole suite, selected with ``-m chaos`` (``scripts/chaos``); without it they are
skipped, saying so, and the others (about a thousand user-roles each, well under a
minute) run with every test run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shared.db import open_database
from tests import conftest as base
from tests.e2e.chaos.lab import Lab
from tests.e2e.chaos.record import RECORDED, line
from tests.e2e.chaos.scale import Scale
from tests.e2e.conftest import cluster_of_its_own, start_migrated
from tests.e2e.processes import Processes
from tests.stub_server import running_stub

# Durable commits, as in production: a crash of the server must not lose an acknowledged
# commit (with synchronous_commit off it may, by design, and the audit would say so).
SETTINGS = {**base.TEST_SERVER_SETTINGS, "synchronous_commit": "on"}
FULL_ONLY = "runs in the whole chaos suite only: scripts/chaos (pytest -m chaos)"


def full_run(config: pytest.Config) -> bool:
    return "chaos" in (config.getoption("markexpr", "") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if full_run(config):
        return
    for item in items:
        marker = item.get_closest_marker("chaos")
        if marker is not None and marker.kwargs.get("ci") is False:
            item.add_marker(pytest.mark.skip(reason=FULL_ONLY))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RECORDED:
        terminalreporter.section("chaos: what each scenario measured (.data/chaos/)")
        for entry in RECORDED:
            terminalreporter.write_line(line(entry))


@pytest.fixture(scope="session")
def scale(pytestconfig: pytest.Config) -> Scale:
    return Scale.from_env(full=full_run(pytestconfig))


@pytest_asyncio.fixture
async def lab(scale: Scale, request: pytest.FixtureRequest) -> AsyncIterator[Lab]:
    with cluster_of_its_own(SETTINGS) as cluster:
        url = await start_migrated(cluster)
        processes = Processes({"DATABASE_URL": url, "MS8_SCHEMA": base.SCHEMA})
        db = await open_database(base.test_settings(url), "chaos")
        try:
            async with running_stub("--latency-ms", "20") as stub:
                yield Lab(cluster, url, db, stub, processes, scale)
        finally:
            report = getattr(request.node, "report_call", None)
            processes.close(show_output=report is not None and report.failed)
            await db.close()
