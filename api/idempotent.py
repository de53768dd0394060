"""The ``Idempotency-Key`` header of the sending endpoints.

Without the header, the work runs as is. With it, the work runs inside the key's claim
(``shared.idempotency.once``): the jobs and the key commit together, and a retry with
the same key and the same request within a day gets the very same status and body back
(with ``Idempotent-Replayed: true``) and sends nothing. The fingerprint covers the method,
the path and the body as parsed (so whitespace and key order do not matter).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.responses import Response

from api.endpoint import Call, Param
from api.errors import ApiError
from api.schemas import IDEMPOTENCY_KEY_PATTERN
from api.wire import dumps
from shared import idempotency
from shared.conn import Conn

HEADER = "Idempotency-Key"
PARAM = Param(
    HEADER, "header",
    {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN,
     "description": "1-200 visible ASCII characters"},
    description="Send the same key again (within a day) to get the first response back "
                "instead of sending twice.")

Work = Callable[[Conn | None], Awaitable[tuple[int, Any]]]
Locate = Callable[[Any], str | None]


def fingerprint(call: Call) -> str:
    canonical = orjson.dumps(call.body, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256()
    for part in (call.request.method.encode(), call.request.url.path.encode(), canonical):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


async def respond(call: Call, work: Work, locate: Locate) -> Response:
    key = call.headers.get(HEADER)
    headers: dict[str, str] = {}
    if key is None:
        status, body = await work(None)
        text = dumps(body)
    else:
        try:
            async with idempotency.once(call.ctx.db, call.principal.name, key,
                                        fingerprint(call)) as claim:
                if claim.replay is not None:
                    status, text = claim.replay.status, claim.replay.body_json.encode()
                    body = orjson.loads(text)
                    headers["Idempotent-Replayed"] = "true"
                else:
                    status, body = await work(claim.conn)
                    text = dumps(body)
                    claim.record(status, text.decode())
        except idempotency.KeyReused as error:
            raise ApiError("idempotency_key_reused", str(error), field=HEADER) from None
    location = locate(body)
    if location is not None and status == 201:
        headers["Location"] = location
    return Response(text, status, headers=headers, media_type="application/json")
