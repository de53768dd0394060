"""Which ``Host`` a request may name, and whether a browser request comes from this site.

A web page can point a name of its own at 127.0.0.1 (DNS rebinding): the browser then
sends that page's requests to a developer's keyless API as same-origin, with ``Host`` and
``Origin`` both naming the attacker's site. So the ``Host`` is checked first, against
``MS8_ALLOWED_HOSTS`` (in dev, by default, the loopback names), and a browser request is
same-origin only when its ``Origin`` names that checked host. Without a list (production,
where every caller needs a key and a rebinding page gets no cookie of ours) any host is
taken. Health checks are exempt: platforms probe them by address, and they reveal nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiError, error_response

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
EXEMPT_PREFIX = "/health/"


def hostname(host: str) -> str:
    """The name in a ``Host`` value, without port, brackets or a final dot, lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else ""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".")


def parse_allowed(raw: str | None, *, dev: bool, bind_host: str) -> frozenset[str] | None:
    """The allowed host names (None: any) from ``MS8_ALLOWED_HOSTS``, ``*`` meaning any."""
    if raw is not None and raw.strip():
        names = {hostname(part) for part in raw.split(",") if part.strip()}
        return None if "*" in names else frozenset(names)
    if not dev:
        return None
    extra = {hostname(bind_host)} - {"", "0.0.0.0", "::"}
    return LOOPBACK | extra


class AllowedHosts:
    """ASGI middleware: 400 ``invalid_host`` for a ``Host`` outside the allowed names."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self.allowed is not None and scope["type"] in ("http", "websocket")
                and not scope["path"].startswith(EXEMPT_PREFIX)):
            host = Headers(scope=scope).get("host", "")
            if hostname(host) not in self.allowed:
                response = error_response(ApiError(
                    "invalid_host", f"host {host[:80]!r} is not served here; allowed: "
                    f"{', '.join(sorted(self.allowed))} (MS8_ALLOWED_HOSTS)"))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site. The ``Host``
    compared with has passed ``AllowedHosts`` (where a list is in force)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by a browser, or a same-origin GET of an older one
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # 'http://[' and the like
        return False
    return bool(netloc) and netloc.lower() == request.headers.get("host", "").lower()
