"""The dashboard: server-rendered pages (no build step), small static CSS and JS.

    /dashboard                      charts of the last 24 hours (or a chosen range):
                                    jobs ended and failed per queue, jobs waiting, the
                                    oldest one's age, busy slots; queues with live counts,
                                    batches, nightly runs, schedules, workers
    /dashboard/nightly-runs/{night} one night's run: progress, rate, expected end, the
                                    sources that failed most, breaker openings
    /dashboard/jobs?queue=&state=   jobs with data, error, progress, retry and cancel
    /dashboard/jobs/{id}            one job, live
    /dashboard/batches              batches with their totals
    /dashboard/user-roles/{id}      a user-role's latest snapshot, and its Fresh data button
    /dashboard/login, /logout       a session from an API key (signed cookie)
    /docs                           the OpenAPI document, rendered in the page

Pages are read with the session's key; buttons are forms checked for CSRF and scope.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.dashboard import actions, nightly, pages, user_roles
from api.dashboard.view import HERE


def routes() -> list[BaseRoute]:
    return [
        Route("/dashboard", pages.overview),
        Route("/dashboard/jobs", pages.jobs),
        Route("/dashboard/jobs/{id}", pages.job),
        Route("/dashboard/batches", pages.batches),
        Route("/dashboard/nightly-runs/{night}", nightly.nightly_run),
        Route("/dashboard/user-roles", user_roles.lookup),
        Route("/dashboard/user-roles/{id}", user_roles.user_role),
        Route("/dashboard/login", actions.login, methods=["GET", "POST"]),
        Route("/dashboard/logout", actions.logout, methods=["POST"]),
        Route("/dashboard/{kind}/{key}/{action}", actions.act, methods=["POST"]),
        Route("/docs", pages.docs),
        Mount("/dashboard/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
