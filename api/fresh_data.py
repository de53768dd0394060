"""Fresh data for one user-role, on demand: ``POST /user-roles/{id}/fresh-data``.

The answer is 202 with the job (``Location: /jobs/{id}``) whether the job was created by
this request or was already waiting or running for the user-role (``created`` says
which): one job per user-role at a time, so pressing the button twice watches the same
job. Its progress streams from ``/jobs/{id}/events``; its result is the job's output and
the user-role's latest snapshot (``/user-roles/{id}/snapshot``).
"""

from __future__ import annotations

from starlette.responses import Response

from analytics import fresh
from api import wire
from api.analytics import USER_ROLE_ID
from api.endpoint import Call, Endpoint, Reply
from api.served import with_warnings


async def request_fresh_data(call: Call) -> Response:
    user_role_id = call.path["id"]
    warnings = await call.ctx.served.warnings([fresh.FRESH_QUEUE])
    sent = await fresh.request(call.ctx.db, user_role_id)
    body = {"id": sent.id, "created": sent.created, "user_role_id": user_role_id}
    return wire.json_response(with_warnings(body, warnings), 202,
                              headers={"Location": f"/jobs/{sent.id}"})


ENDPOINTS = [
    Endpoint(
        "POST", "/user-roles/{id}/fresh-data", request_fresh_data,
        "Collect a user-role's analytics now", "requestFreshData", "analytics",
        {202: Reply("The user-role's fresh-data job: sent now, or the one already waiting "
                    "or running (created: false).", "FreshDataJob",
                    headers={"Location": "the job's URL"})},
        scope="write", params=[USER_ROLE_ID], errors=("not_found",),
        description="The job runs ahead of the nightly batch; its progress names each "
                    "source as it answers (GET /jobs/{id}/events), its output says "
                    "complete or partial with the missing sources, and it writes the "
                    "day's snapshot (GET /user-roles/{id}/snapshot)."),
]
