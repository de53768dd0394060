"""End-to-end fixtures: ``processes`` starts subprocesses against this test's database
and kills them all at teardown (showing their output when the test failed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import SCHEMA
from tests.e2e.processes import Processes


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def processes(db_url: str, request: pytest.FixtureRequest) -> Iterator[Processes]:
    group = Processes({"DATABASE_URL": db_url, "MS8_SCHEMA": SCHEMA})
    try:
        yield group
    finally:
        report = getattr(request.node, "report_call", None)
        group.close(show_output=report is not None and report.failed)
