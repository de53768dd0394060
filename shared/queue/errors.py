"""Errors of the queue core.

Each says what was wrong with which value; none leaves a write behind.
"""

from __future__ import annotations


class QueueError(Exception):
    """Base class of every error the queue core raises on purpose."""


class InvalidInput(QueueError, ValueError):
    """A value given to the core is malformed or out of range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(QueueError, LookupError):
    """A job, queue or batch does not exist."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key!r} does not exist")
        self.kind = kind
        self.key = key


class InvalidState(QueueError):
    """The action does not apply to the object in its current state."""


class SingletonTaken(QueueError):
    """Another waiting or active job holds the singleton key."""

    def __init__(self, queue: str, key: str) -> None:
        super().__init__(f"a waiting or active job of queue {queue!r} already holds "
                         f"singleton key {key!r}")
        self.queue = queue
        self.key = key
