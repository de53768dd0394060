"""The worker's shared HTTP clients, one of each per process: made on first use, closed
when the worker stops.

- ``http``: an ``httpx.AsyncClient`` for handlers in general (10 s timeout).
- ``aiohttp``: an ``aiohttp.ClientSession`` for handlers that make many small requests at
  once (the analytics sources: four per user-role, a night's 120,000). Measured against
  the stub on this project's 2-core machine, httpx's connection pool costs ~5-10 ms of
  CPU per request at 100 requests in flight (50-80 requests/s per process), aiohttp
  ~0.3 ms (1,000+/s); the nightly fan-out needs ~2,000/s over two workers.

The session keeps no cookies (sources are called for many user-roles: nothing one
answer sets may reach the next request) and sets no cap of its own on connections:
callers bound their concurrency (the analytics collector, per source).
"""

from __future__ import annotations

import aiohttp
import httpx

DEFAULT_TIMEOUT = 10.0


class Clients:
    def __init__(self) -> None:
        self._http: httpx.AsyncClient | None = None
        self._aiohttp: aiohttp.ClientSession | None = None

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(DEFAULT_TIMEOUT))
        return self._http

    def aiohttp(self) -> aiohttp.ClientSession:
        """Made inside the running loop (aiohttp binds a session to it)."""
        if self._aiohttp is None:
            self._aiohttp = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT))
        return self._aiohttp

    async def close(self) -> None:
        http, self._http = self._http, None
        session, self._aiohttp = self._aiohttp, None
        if http is not None:
            await http.aclose()
        if session is not None:
            await session.close()
