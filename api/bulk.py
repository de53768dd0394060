"""The common many-jobs body, read without the generic schema walk.

``POST /jobs/bulk`` is the API's throughput path: a fan-out sends thousands of jobs of a
few fields each, and walking every item through the JSON Schema validator and then
``JobSpec.of`` cost ~25 µs a job, most of the request. ``prepared`` recognises the
common shape — every job only ``queue``, ``data`` and ``priority``, nothing unusual in
them — checks exactly what the schema and the core would, and hands the jobs on as the
core's ``PlainJobs`` (three lists, no object per job), which ``core.send_plain`` copies
in with their queues' defaults (about 0.6 µs a job here, 4 µs of API CPU a job for the
whole request).

It only ever says yes to a body that the generic path accepts, with the same jobs as a
result; anything else, valid or not, gets ``None`` and goes the generic way, which gives
every error its field, message and status. So the errors cannot drift: they are still
written in one place (``api/validator.py`` and the core's checks). A body it accepts is
one that validation returns unchanged, so the handler's ``call.body`` (which the
idempotency fingerprint is taken from) is the same either way.
``tests/unit/api/test_bulk.py`` holds it to both, on generated bodies. ``POST /jobs``
takes the same shortcut for its one job (``prepared_one``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from api.context import ApiContext
from shared import queue as core
from shared.queue import validation as limits

_FIELDS = frozenset({"queue", "data", "priority"})
_QUEUE = limits.QUEUE_NAME
_LOW, _HIGH = limits.PRIORITY_MIN, limits.PRIORITY_MAX
# A NUL can only reach a parsed string through this escape (JSON forbids raw control
# characters in strings): without it anywhere in the body, no string or key holds one.
_NUL_ESCAPE = b"\\u0000"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A many-jobs body already turned into the core's jobs."""

    jobs: core.PlainJobs


def prepared(ctx: ApiContext, raw: bytes, value: Any) -> Prepared | None:
    """The jobs of a ``BulkSend`` body of the common shape, or None (generic path)."""
    max_jobs = ctx.settings.max_jobs_per_request
    if type(value) is not dict or len(value) != 1 or _NUL_ESCAPE in raw:
        return None
    jobs = value.get("jobs")
    if type(jobs) is not list or not 1 <= len(jobs) <= max_jobs:
        return None
    queues: list[str] = []
    data_json: list[str] = []
    priorities: list[int] = []
    add_queue, add_data, add_priority = queues.append, data_json.append, priorities.append
    checked: set[str] = set()  # the names already matched: a request names few queues
    fields = _FIELDS.issuperset
    dumps = orjson.dumps
    max_bytes = limits.MAX_DATA_BYTES
    for item in jobs:
        if type(item) is not dict or not fields(item):
            return None
        queue = item.get("queue")
        if type(queue) is not str:
            return None
        if queue not in checked:
            if not _QUEUE.fullmatch(queue):
                return None
            checked.add(queue)
        priority = item.get("priority", 0)
        if type(priority) is not int or not _LOW <= priority <= _HIGH:
            return None  # floats such as 2.0 and booleans take the generic path
        data = item.get("data")
        encoded = dumps({} if data is None else data)
        if len(encoded) > max_bytes:
            return None
        add_queue(queue)
        add_data(encoded.decode())
        add_priority(priority)
    return Prepared(core.PlainJobs(queues, data_json, priorities))


def prepared_one(ctx: ApiContext, raw: bytes, value: Any) -> core.JobSpec | None:
    """The job of a ``JobSpec`` body (``POST /jobs``) of the same common shape, or None
    (generic path). A single send's body is one item of a many-jobs body, checked by the
    same code: the schema walk and ``JobSpec.of`` were about a tenth of a single send's
    CPU."""
    found = prepared(ctx, raw, {"jobs": [value]})
    return None if found is None else found.jobs.specs()[0]
