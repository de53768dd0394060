"""The stub's routes, as a bare ASGI app: no framework between uvicorn and the answer,
because the benchmark sends it thousands of requests a second on a shared core.

    GET   /health                               200 {"status": "ok"}
    GET   /{source}/user-roles/{user_role_id}   the data, after the source's latency, in its mode
                                                (an id not in ASCII digits, or with a leading
                                                zero, is 400: it names no user-role)
    GET   /_admin/sources                       every source's config and counters
    PATCH /_admin/sources/{source}              {latency_ms?, failure_rate?, mode?} → its config
    POST  /_admin/reset                         counters to zero; {"config": true}: configs too

Errors are JSON ``{"code", "message", "field"?}``, as the API's are. A request's config is
read when it arrives: a change applies to the requests that follow it. When the stub
stops (``closing`` is set), held requests are answered 503 and drips finish at once, so
shutdown is quick and every client gets an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from shared import numerals
from shared.logging import get_logger
from stub import payload
from stub.config import InvalidSetting
from stub.state import Source, Sources

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Waiter = asyncio.Future[Any]

JSON = b"application/json"
MAX_ADMIN_BODY = 64 * 1024
DRIP_BYTES = 4  # per DRIP_SECONDS: a read timeout never fires, only a total deadline helps
DRIP_SECONDS = 1.0

log = get_logger(__name__)


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, str] = {"code": code, "message": message}
        if field is not None:
            self.body["field"] = field


class Disconnected(Exception):
    """The client left before the request was read."""


class StubApp:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.closing = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        parts = scope["path"].strip("/").split("/")
        try:
            if len(parts) == 3 and parts[1] == "user-roles" and parts[0] != "_admin":
                _allow(method, "GET")
                await self.user_role(parts[0], parts[2], receive, send)
            elif parts[0] == "_admin":
                await self.admin(method, parts[1:], receive, send)
            elif parts == ["health"]:
                _allow(method, "GET")
                await respond(send, 200, {"status": "ok"})
            else:
                raise HttpError(404, "not_found", f"no route {scope['path']}")
        except HttpError as error:
            await respond(send, error.status, error.body)
        except Disconnected:
            return

    # ------------------------------------------------------------------ the data

    async def user_role(self, name: str, user_role_id: str, receive: Receive,
                        send: Send) -> None:
        source = self.sources.get(name)
        if source is None:
            raise HttpError(404, "not_found", f"no source {name!r} "
                            f"(known: {', '.join(self.sources.by_name)})")
        try:
            numerals.whole(user_role_id, canonical=True)
        except ValueError:
            raise HttpError(400, "invalid_parameter", f"user-role id {user_role_id!r:.40} is "
                            "not a whole number written in ASCII digits",
                            "user_role_id") from None
        counters = source.counters
        counters.received += 1
        config = source.config
        if config.mode == "hang":
            await self.hang(source, receive, send)
            return
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        if config.mode == "down" or source.fails(self.sources.seed, user_role_id):
            source.counters.failed += 1
            raise HttpError(503, "unavailable", f"{name} is unavailable (stub, mode "
                            f"{config.mode}, failure rate {config.failure_rate:g})")
        if config.mode == "garbage":
            await respond_raw(send, 200, payload.garbage(name, user_role_id))
            source.counters.garbage += 1
            return
        if config.mode == "huge":
            await respond_raw(send, 200, payload.huge(name, user_role_id))
        elif config.mode == "drip":
            if not await self.drip(send, receive, payload.body(name, user_role_id)):
                return
        else:
            await respond_raw(send, 200, payload.body(name, user_role_id))
        source.counters.ok += 1

    async def hang(self, source: Source, receive: Receive, send: Send) -> None:
        """Hold the request without a word until the client gives up (or the stub stops)."""
        source.counters.hung += 1
        source.hanging += 1
        try:
            async with self.watching(receive) as (gone, stopping):
                await asyncio.wait({gone, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not gone.done():
                    source.counters.failed += 1
                    await respond(send, 503, {"code": "unavailable",
                                              "message": "the stub is stopping"})
        finally:
            source.hanging -= 1

    async def drip(self, send: Send, receive: Receive, body: bytes) -> bool:
        """Send ``body`` a few bytes at a time; False if the client left before the end."""
        async with self.watching(receive) as (gone, stopping):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", JSON),
                                    (b"content-length", b"%d" % len(body))]})
            start = 0
            while start + DRIP_BYTES < len(body) and not stopping.done():
                await send({"type": "http.response.body",
                            "body": body[start:start + DRIP_BYTES], "more_body": True})
                start += DRIP_BYTES
                await asyncio.wait({gone, stopping}, timeout=DRIP_SECONDS,
                                   return_when=asyncio.FIRST_COMPLETED)
                if gone.done():
                    return False
            await send({"type": "http.response.body", "body": body[start:]})
            return True

    @contextlib.asynccontextmanager
    async def watching(self, receive: Receive) -> AsyncIterator[tuple[Waiter, Waiter]]:
        """Two futures: done when the client disconnects, done when the stub stops."""
        gone = asyncio.ensure_future(until_disconnect(receive))
        stopping = asyncio.ensure_future(self.closing.wait())
        try:
            yield gone, stopping
        finally:
            gone.cancel()
            stopping.cancel()

    # ------------------------------------------------------------------ admin

    async def admin(self, method: str, path: list[str], receive: Receive, send: Send) -> None:
        if path == ["sources"]:
            _allow(method, "GET")
            await respond(send, 200, self.sources.as_dict())
        elif len(path) == 2 and path[0] == "sources":
            _allow(method, "PATCH")
            await respond(send, 200, self.change(path[1], await read_json(receive)))
        elif path == ["reset"]:
            _allow(method, "POST")
            await respond(send, 200, self.reset(await read_json(receive, empty={})))
        else:
            raise HttpError(404, "not_found", f"no admin route /_admin/{'/'.join(path)}")

    def change(self, name: str, changes: Any) -> dict[str, Any]:
        source = self.sources.get(name)
        if source is None:
            raise HttpError(404, "not_found", f"no source {name!r}")
        if not isinstance(changes, dict):
            raise HttpError(400, "invalid_body", "the body must be a JSON object")
        try:
            config = source.config.changed(changes)
        except InvalidSetting as error:
            raise HttpError(400, "invalid_body", str(error), error.field) from None
        source.config = config
        log.info("source changed", source=name, **config.as_dict())
        return source.as_dict()

    def reset(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise HttpError(400, "invalid_body", "the body must be a JSON object")
        unknown = sorted(set(body) - {"config"})
        if unknown:
            raise HttpError(400, "invalid_body", f"{unknown[0]}: unknown field (known: config)",
                            unknown[0])
        config = body.get("config", False)
        if not isinstance(config, bool):
            raise HttpError(400, "invalid_body", f"config: must be true or false, got {config!r}",
                            "config")
        self.sources.reset(config=config)
        log.info("stub reset", config=config)
        return self.sources.as_dict()


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, "method_not_allowed", f"{method} is not allowed here, only {allowed}")


# ---------------------------------------------------------------------- ASGI plumbing


async def respond(send: Send, status: int, body: Any) -> None:
    await respond_raw(send, status, orjson.dumps(body))


async def respond_raw(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", JSON), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def read_json(receive: Receive, *, empty: Any = None) -> Any:
    """The request body as JSON; ``empty`` stands for no body, if given."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_ADMIN_BODY:
            raise HttpError(400, "body_too_large", f"the body is over {MAX_ADMIN_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    if not raw.strip() and empty is not None:
        return empty
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise HttpError(400, "malformed_json", f"the body is not valid JSON: {error}") from None


async def until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass

