"""The handlers a worker can run: {queue name: async handler(ctx) -> output}.

A handler module registers its functions with the ``@handler("queue-name")`` decorator;
``load()`` imports the modules of ``BUILTIN_MODULES`` (and any extra ones named by
``MS8_WORKER_HANDLER_MODULES``) and returns the registry. To add the handlers of a new
queue, write a module here and add it to ``BUILTIN_MODULES``.

One queue has exactly one handler: registering a second one for a queue is an error,
so two modules can never silently fight over a queue.

A handler may declare how many of its jobs a worker runs at once by default
(``@handler("collect-analytics", concurrency=100)``: its runs mostly wait on other
services); ``MS8_WORKER_QUEUES`` and ``MS8_WORKER_CONCURRENCY`` still override it.

A handler module may also add Prometheus collectors of its own (``add_collector``); the
worker serves them with its metrics (the analytics sources' breakers, say).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from shared.queue import QUEUE_NAME
from worker.context import JobContext, PermanentError
from worker.settings import MAX_CONCURRENCY

Handler = Callable[[JobContext], Awaitable[Any]]
H = TypeVar("H", bound=Handler)

BUILTIN_MODULES: tuple[str, ...] = (
    "worker.handlers.builtin", "worker.handlers.analytics", "worker.handlers.fresh_data")


class HandlerError(ValueError):
    """A handler registration or lookup is wrong; the message names the queue or module."""


class Handlers:
    """A registry of handlers by queue name."""

    def __init__(self) -> None:
        self._by_queue: dict[str, Handler] = {}
        self._concurrency: dict[str, int] = {}
        self._collectors: list[Any] = []

    def register(self, queue: str, *, concurrency: int | None = None) -> Callable[[H], H]:
        """Decorator: ``@handlers.register("sleep")`` makes the function run jobs of "sleep"
        (``concurrency``: how many at once in a worker, unless configured otherwise)."""
        if not QUEUE_NAME.fullmatch(queue):
            raise HandlerError(f"{queue!r} is not a queue name")
        if concurrency is not None and not (
                isinstance(concurrency, int) and 1 <= concurrency <= MAX_CONCURRENCY):
            raise HandlerError(
                f"the concurrency of {queue!r} must be a whole number from 1 to "
                f"{MAX_CONCURRENCY}, got {concurrency!r}")

        def decorate(function: H) -> H:
            existing = self._by_queue.get(queue)
            if existing is not None and existing is not function:
                raise HandlerError(
                    f"queue {queue!r} already has a handler: "
                    f"{existing.__module__}.{existing.__qualname__}")
            self._by_queue[queue] = function
            if concurrency is not None:
                self._concurrency[queue] = concurrency
            return function

        return decorate

    def snapshot(self) -> Mapping[str, Handler]:
        return MappingProxyType(dict(self._by_queue))

    def concurrencies(self) -> Mapping[str, int]:
        """{queue: concurrency} that handlers declared."""
        return MappingProxyType(dict(self._concurrency))

    def add_collector(self, collector: Any) -> None:
        """Serve a ``prometheus_client`` collector with the worker's metrics."""
        if collector not in self._collectors:
            self._collectors.append(collector)

    def collectors(self) -> tuple[Any, ...]:
        return tuple(self._collectors)


registry = Handlers()
handler = registry.register
add_collector = registry.add_collector
concurrencies = registry.concurrencies
collectors = registry.collectors


def load(extra_modules: Iterable[str] = ()) -> Mapping[str, Handler]:
    """Import the handler modules (built-in and extra) and return every registered handler."""
    for module in (*BUILTIN_MODULES, *extra_modules):
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise HandlerError(f"cannot import handler module {module!r}: {error}") from error
    return registry.snapshot()


def select(handlers: Mapping[str, Handler], queues: Iterable[str]) -> dict[str, Handler]:
    """The handlers of ``queues``; a queue without one is an error naming what exists."""
    chosen: dict[str, Handler] = {}
    for queue in queues:
        if queue not in handlers:
            known = ", ".join(sorted(handlers)) or "none"
            raise HandlerError(f"no handler for queue {queue!r} (handlers exist for: {known})")
        chosen[queue] = handlers[queue]
    return chosen


__all__ = [
    "BUILTIN_MODULES", "Handler", "HandlerError", "Handlers", "JobContext", "PermanentError",
    "add_collector", "collectors", "concurrencies", "handler", "load", "registry", "select",
]
