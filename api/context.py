"""What every request of one API process shares, held on ``app.state.ctx``.

Built by ``create_app`` before the lifespan starts; ``db`` and ``hub`` are filled in by
the lifespan (handlers only run in between, so they are always set there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from api.config import ApiSettings
from api.hub import EventHub
from api.keys import KeyRing
from api.metrics import Metrics
from api.served import ServedQueues
from api.session import Sessions
from api.throttle import FailureThrottle
from api.validator import Validator
from shared.db import Database
from shared.queue import SendCoalescer
from shared.settings import Settings


@dataclass
class ApiContext:
    shared: Settings = field(repr=False)  # holds the database URL
    settings: ApiSettings
    keys: KeyRing
    sessions: Sessions
    validator: Validator
    metrics: Metrics
    throttle: FailureThrottle
    # A database opened and checked before the server started (``python -m api``); the
    # lifespan takes it instead of opening its own.
    opened: Database | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)
    _hub: EventHub | None = field(default=None, repr=False)
    _sender: SendCoalescer | None = field(default=None, repr=False)
    _served: ServedQueues | None = field(default=None, repr=False)

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the API's database is not open (is the lifespan running?)")
        return self._db

    @property
    def sender(self) -> SendCoalescer:
        """Single sends outside an idempotency claim share commits through this."""
        if self._sender is None:
            raise RuntimeError("the API's sender is not started")
        return self._sender

    @property
    def served(self) -> ServedQueues:
        """Which queues a live worker serves (cached for a second or two)."""
        if self._served is None:
            raise RuntimeError("the API's database is not open (is the lifespan running?)")
        return self._served

    @property
    def hub(self) -> EventHub:
        if self._hub is None:
            raise RuntimeError("the API's event hub is not started")
        return self._hub

    def attach(self, db: Database, hub: EventHub) -> None:
        """The lifespan opened the database and started the hub: requests may run."""
        self._db, self._hub = db, hub
        self._sender = SendCoalescer(db)
        self._served = ServedQueues(db, seen_within=self.settings.worker_seen_seconds)

    async def detach(self) -> None:
        """The lifespan is ending: flush the sender and forget what ``attach`` set (the
        lifespan stops the hub and closes the database it opened)."""
        if self._sender is not None:
            await self._sender.close()
        self._db = self._hub = self._sender = self._served = None
