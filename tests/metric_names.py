"""The metric names the code exports, for the tests of the files that name them (alert
rules, the dashboard, docs/operations.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SUFFIXES = {"counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("_count", "_sum", "_created"), "gauge": (), "info": ("_info",)}


def families() -> Iterator[Any]:
    """Every metric family of the API app and of a worker with its handlers' collectors."""
    from api.metrics import Metrics
    from worker.handlers import collectors, load
    from worker.metrics import WorkerMetrics

    load()
    for registry in (Metrics().registry, WorkerMetrics().registry):
        yield from registry.collect()
    for collector in collectors():
        yield from collector.collect()


def series_names() -> set[str]:
    """Every series name a query may use (``_total``, ``_bucket``... included)."""
    names = {"up"}
    for family in families():
        names.update(family.name + s for s in ("", *SUFFIXES.get(family.type, ())))
    return names


def documented_names() -> set[str]:
    """The name each family is documented and queried by: counters with ``_total``."""
    return {family.name + ("_total" if family.type == "counter" else "")
            for family in families()}
