"""GET /metrics: the process's registry (``api.metrics``), with the queues read from the
database at scrape time; a scrape that cannot reach the database still answers, with
``ms8_api_database_up`` 0 and no queue series."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response

from api.auth import METRICS
from api.endpoint import Call, Endpoint, Reply
from api.errors import translate
from shared import queue as core


async def scrape(call: Call) -> Response:
    metrics = call.ctx.metrics
    try:
        stats = await core.queue_stats(
            call.ctx.db, seen_within=call.ctx.settings.worker_seen_seconds)
    except Exception as error:
        known = translate(error)
        if known is None or known.code != "database_unavailable":
            raise
        metrics.database_up.set(0)
        metrics.queues.clear()  # stale numbers would look current
    else:
        metrics.database_up.set(1)
        metrics.queues.update(stats)
    metrics.stream_subscribers.set(call.ctx.hub.subscribers)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


ENDPOINTS = [
    Endpoint("GET", "/metrics", scrape, "Prometheus metrics", "metrics", "health",
             {200: Reply("Metrics in the Prometheus text format.", "MetricsText",
                         media_type="text/plain")},
             scope=METRICS, description=(
                 "For a scraper: its own token (`MS8_METRICS_TOKEN`, sent as a bearer "
                 "token, good for nothing else) or any read key.")),
]
