"""The Starlette application: routes, error handling, and the lifespan that owns the
database pool and the event hub.

At start the lifespan opens the pool (waiting for the database with backoff), makes sure
the schema is current on a direct connection (migrating it when ``MS8_AUTO_MIGRATE`` is
on, refusing to start otherwise) unless ``python -m api`` did so already, and starts the
one LISTEN of the process. With no API key configured it logs a warning that anyone who
reaches the port can do anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Route

from api import (
    analytics,
    batches,
    dashboard,
    events,
    fresh_data,
    health,
    jobs,
    metrics,
    openapi,
    queues,
    schedules,
    scrape,
    stats,
    workers,
)
from api.config import ApiSettings
from api.context import ApiContext
from api.endpoint import Endpoint, routes
from api.errors import handle_exception, handle_http_exception
from api.hosts import AllowedHosts
from api.hub import EventHub
from api.keys import KeyRing
from api.schemas import components, json_value
from api.session import Sessions
from api.throttle import FailureThrottle
from api.validator import Validator
from shared import idempotency
from shared.logging import get_logger
from shared.metrics import build_version
from shared.settings import Settings
from shared.startup import open_checked

log = get_logger(__name__)
IDEMPOTENCY_SWEEP_SECONDS = 3600.0


def all_endpoints() -> list[Endpoint]:
    return [*jobs.ENDPOINTS, *events.ENDPOINTS, *queues.ENDPOINTS, *batches.ENDPOINTS,
            *schedules.ENDPOINTS, *workers.ENDPOINTS, *analytics.ENDPOINTS, *stats.ENDPOINTS,
            *fresh_data.ENDPOINTS, *health.ENDPOINTS, *scrape.ENDPOINTS,
            *openapi.ENDPOINTS]


def create_app(shared: Settings | None = None, settings: ApiSettings | None = None
               ) -> Starlette:
    """The API app; settings default to the environment's."""
    shared = shared or Settings.from_env()
    settings = settings or ApiSettings.from_env(dev=shared.dev)
    schemas = components(settings.max_jobs_per_request)
    ctx = ApiContext(
        shared=shared, settings=settings, keys=KeyRing(settings.keys, settings.metrics_token),
        sessions=Sessions(settings), validator=Validator(schemas, {"JsonValue": json_value}),
        metrics=metrics.Metrics(),
        throttle=FailureThrottle(settings.auth_failures_per_minute))
    endpoints = all_endpoints()
    app_routes: list[BaseRoute] = [
        *routes(endpoints), *dashboard.routes(), Route("/", _home, include_in_schema=False)]
    app = Starlette(
        routes=app_routes,
        lifespan=_lifespan,
        middleware=[Middleware(metrics.MetricsMiddleware, ctx.metrics),
                    Middleware(AllowedHosts, settings.allowed_hosts)],
        exception_handlers={HTTPException: _http_exception, Exception: handle_exception},
    )
    # Starlette's own slash redirect is an absolute URL built from the Host header.
    app.router.redirect_slashes = False
    app.state.ctx = ctx
    app.state.openapi_json = openapi.encode(openapi.document(endpoints, schemas, build_version()))
    return app


async def _home(_request: Request) -> Response:
    return RedirectResponse("/dashboard", status_code=307)


async def _http_exception(request: Request, exc: Exception) -> Response:
    """A GET of a route with a slash too many is sent to the route, by a relative URL."""
    if (isinstance(exc, HTTPException) and exc.status_code == 404
            and request.method in ("GET", "HEAD")):
        path = request.url.path
        target = "/" + path.strip("/")
        if path.endswith("/") and target != "/" and any(
                route.matches({**request.scope, "path": target})[0] == Match.FULL
                for route in request.app.router.routes):
            query = request.url.query
            return RedirectResponse(target + (f"?{query}" if query else ""), status_code=307)
    return await handle_http_exception(request, exc)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    ctx: ApiContext = app.state.ctx
    if ctx.keys.open:
        log.warning("NO API KEY CONFIGURED: anyone who can reach this port can read and "
                    "change every job (allowed only because MS8_ENV=dev); set MS8_API_KEYS")
    db, ctx.opened = ctx.opened or await open_checked(ctx.shared, "api"), None
    hub: EventHub | None = None
    sweeper: asyncio.Task[None] | None = None
    try:
        hub = EventHub(db, revocations=ctx.sessions.revoked)
        await hub.start()
        ctx.attach(db, hub)
        sweeper = asyncio.create_task(_sweep_idempotency_keys(ctx), name="idempotency sweep")
        log.info("api ready", schema=db.schema, schema_version=db.schema_version,
                 keys=[k.name for k in ctx.settings.keys])
        yield
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await ctx.detach()
        if hub is not None:
            await hub.stop()
        await db.close()


async def _sweep_idempotency_keys(ctx: ApiContext) -> None:
    """Forget idempotency keys older than a day, once an hour (every API process does it;
    the deletes are idempotent)."""
    while True:
        try:
            deleted = await idempotency.delete_expired(ctx.db)
            if deleted:
                log.info("expired idempotency keys forgotten", count=deleted)
        except Exception as error:
            log.warning("idempotency sweep failed", error=str(error))
        await asyncio.sleep(IDEMPOTENCY_SWEEP_SECONDS)
