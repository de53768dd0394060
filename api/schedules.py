"""Schedules over HTTP: list with next and last firing, create, change, enable/disable,
run now, delete. Every change notifies the scheduler, which reloads without a restart.
"""

from __future__ import annotations

from starlette.responses import Response

from api import wire
from api.endpoint import Call, Endpoint, Param, Reply
from api.schemas import QUEUE_NAME
from shared import queue as core

NAME = Param("name", "path", QUEUE_NAME, "the schedule's name", required=True)


async def list_schedules(call: Call) -> Response:
    found = await core.list_schedules(call.ctx.db)
    return wire.json_response({"schedules": [wire.schedule(s) for s in found]})


async def create_schedule(call: Call) -> Response:
    body = dict(call.body)
    name, cron = body.pop("name"), body.pop("cron")
    created = await core.create_schedule(call.ctx.db, name, cron, **body)
    return wire.json_response(wire.schedule(created), 201,
                              headers={"Location": f"/schedules/{created.name}"})


async def get_schedule(call: Call) -> Response:
    return wire.json_response(wire.schedule(
        await core.get_schedule(call.ctx.db, call.path["name"])))


async def change_schedule(call: Call) -> Response:
    changed = await core.update_schedule(call.ctx.db, call.path["name"], **call.body)
    return wire.json_response(wire.schedule(changed))


async def enable(call: Call) -> Response:
    return wire.json_response(wire.schedule(
        await core.enable_schedule(call.ctx.db, call.path["name"])))


async def disable(call: Call) -> Response:
    return wire.json_response(wire.schedule(
        await core.disable_schedule(call.ctx.db, call.path["name"])))


async def run_now(call: Call) -> Response:
    fired = await core.run_now(call.ctx.db, call.path["name"])
    headers = {"Location": f"/jobs/{fired.job_id}"} if fired.job_id is not None else {}
    return wire.json_response(wire.firing(fired), 201, headers=headers)


async def delete(call: Call) -> Response:
    await core.delete_schedule(call.ctx.db, call.path["name"])
    return Response(status_code=204)


_SCHEDULE = Reply("The schedule, with its next fire time and last firing.", "Schedule")
_NOT_FOUND = ("not_found",)

ENDPOINTS = [
    Endpoint("GET", "/schedules", list_schedules, "List schedules", "listSchedules",
             "schedules", {200: Reply("Every schedule by name.", "ScheduleList")}),
    Endpoint("POST", "/schedules", create_schedule, "Create a schedule", "createSchedule",
             "schedules", {201: Reply("Created.", "Schedule",
                                      headers={"Location": "the schedule's URL"})},
             scope="write", body="ScheduleSpec", errors=("invalid_state",),
             description="The queue is created on first use. A name already taken is 409."),
    Endpoint("GET", "/schedules/{name}", get_schedule, "Get a schedule", "getSchedule",
             "schedules", {200: _SCHEDULE}, params=[NAME], errors=_NOT_FOUND),
    Endpoint("PATCH", "/schedules/{name}", change_schedule, "Change a schedule",
             "changeSchedule", "schedules", {200: _SCHEDULE}, scope="write", params=[NAME],
             body="ScheduleChange", errors=_NOT_FOUND),
    Endpoint("DELETE", "/schedules/{name}", delete, "Delete a schedule and its firings",
             "deleteSchedule", "schedules", {204: Reply("Deleted.", None, media_type="")},
             scope="write", params=[NAME], errors=_NOT_FOUND,
             description="Jobs it sent are left alone."),
    Endpoint("POST", "/schedules/{name}/enable", enable, "Enable a schedule",
             "enableSchedule", "schedules", {200: _SCHEDULE}, scope="write", params=[NAME],
             errors=_NOT_FOUND, description="Fire times from now on are due (none before)."),
    Endpoint("POST", "/schedules/{name}/disable", disable, "Disable a schedule",
             "disableSchedule", "schedules", {200: _SCHEDULE}, scope="write",
             params=[NAME], errors=_NOT_FOUND),
    Endpoint("POST", "/schedules/{name}/run", run_now, "Run a schedule now",
             "runSchedule", "schedules",
             {201: Reply("Fired: the firing and the job it sent.", "Firing",
                         headers={"Location": "the job's URL"})},
             scope="write", params=[NAME], errors=("not_found", "invalid_state"),
             description="Sends the schedule's job now (enabled or not), recorded as a "
                         "manual firing."),
]
