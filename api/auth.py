"""Who is calling, and may they: API keys, bearer tokens, dashboard sessions, scopes.

A caller is identified, in this order, by ``Authorization: Bearer <secret>`` or
``X-API-Key: <secret>``, then by the dashboard's session cookie. Scopes are ``read``
(GET) and ``write`` (everything that changes something); ``write`` implies ``read``.
Missing or unknown credentials are 401, a known key without the scope is 403. A
scraper's ``MS8_METRICS_TOKEN``, sent the same way, has the ``metrics`` scope alone
(``/metrics``), which every ``read`` key has too.

Cross-site requests: a key sent in a header cannot be forged by another site, so only
cookie-borne (session) requests that change something must carry the session's CSRF
token (``X-CSRF-Token`` header or ``csrf`` form field) and come from this origin.

With no key configured (allowed only with ``MS8_ENV=dev``), every caller is the ``dev``
principal with both scopes, and state changes from another origin are still refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from starlette.requests import Request

from api.config import SCOPES, ApiKey
from api.context import ApiContext
from api.errors import ApiError
from api.hosts import same_origin
from api.session import COOKIE, Session

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]
    session: Session | None = None


METRICS = "metrics"
ANONYMOUS = Principal("anonymous", frozenset())
SCRAPER = Principal("metrics", frozenset({METRICS}))
DEV = Principal("dev", frozenset(SCOPES))


def presented_secret(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""  # present but not a bearer token: counts as a wrong key
    key = request.headers.get("x-api-key")
    return key.strip() if key is not None else None


def session_of(ctx: ApiContext, request: Request) -> tuple[Session, Principal] | None:
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    session = ctx.sessions.verify(cookie)
    if session is None:
        return None
    if ctx.keys.open:
        return session, Principal("dev", DEV.scopes, session)
    key = ctx.keys.for_session(session)
    if key is None:
        return None
    return session, Principal(key.name, key.scopes, session)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_key(ctx: ApiContext, request: Request, secret: str) -> ApiKey | None:
    """The key whose secret this is, or None (counted as a failure of the caller's
    address unless it is the metrics token); 429 while that address has failed too
    often (``api/throttle.py``)."""
    address = client_address(request)
    wait = ctx.throttle.wait(address)
    if wait > 0:
        seconds = str(math.ceil(wait))
        raise ApiError("too_many_requests", f"too many failed authentications from "
                       f"{address}; retry in {seconds} s", headers={"Retry-After": seconds})
    key = ctx.keys.find(secret) if secret else None
    if key is None and not (secret and ctx.keys.is_metrics_token(secret)):
        ctx.throttle.failed(address, path=request.url.path, method=request.method)
    return key


def authenticate(ctx: ApiContext, request: Request, needed: str | None,
                 form_token: str | None = None) -> Principal:
    """The caller, if allowed to use an endpoint needing scope ``needed`` (None: public)."""
    if needed is None:
        return ANONYMOUS
    unsafe = request.method not in SAFE_METHODS
    secret = presented_secret(request)
    if secret is not None:
        if ctx.keys.open:
            return DEV
        key = check_key(ctx, request, secret)
        if key is not None:
            principal = Principal(key.name, key.scopes)
        elif secret and ctx.keys.is_metrics_token(secret):
            principal = SCRAPER
        else:
            raise ApiError("unauthorized", "the API key is not valid",
                           headers={"WWW-Authenticate": 'Bearer realm="ms8-jobs"'})
    else:
        found = session_of(ctx, request)
        if found is not None:
            session, principal = found
            if unsafe:
                token = form_token or request.headers.get(CSRF_HEADER)
                if not same_origin(request) or not ctx.sessions.check_csrf(session, token):
                    raise ApiError("csrf_failed", "this browser request lacks a valid CSRF "
                                   "token or comes from another site")
        elif ctx.keys.open:
            if unsafe and not same_origin(request):
                raise ApiError("csrf_failed", "state changes from another site are refused")
            principal = DEV
        else:
            raise ApiError("unauthorized",
                           "send an API key: 'Authorization: Bearer <key>' or 'X-API-Key'",
                           headers={"WWW-Authenticate": 'Bearer realm="ms8-jobs"'})
    if not allows(principal, needed):
        raise ApiError("forbidden", f"key {principal.name!r} lacks the {needed!r} scope")
    return principal


def allows(principal: Principal, needed: str) -> bool:
    """``metrics`` is a scope of its own (the scraper's token has nothing else) that
    every ``read`` key has too."""
    return needed in principal.scopes or (needed == METRICS and "read" in principal.scopes)


def optional(ctx: ApiContext, request: Request, needed: str) -> Principal | None:
    """The caller if it may use scope ``needed``, None instead of a 401 or 403 (a public
    endpoint that tells a key holder more)."""
    try:
        return authenticate(ctx, request, needed)
    except ApiError:
        return None
