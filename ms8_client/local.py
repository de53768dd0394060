"""``JobQueue`` over the queue core, in this process: no HTTP, the caller's ``Database``.

For code that runs next to the database anyway (a worker's handler sending follow-up
jobs, a script, a test). Ends and progress are followed by NOTIFY through one shared
``JobWatcher`` (one direct connection, opened on first use, closed by ``close()``);
idempotency keys are those of the API (``shared.idempotency``), kept apart under their
own principal (``"local"`` unless told otherwise). The core's errors are raised as those
of ``ms8_client.errors``; the ``Database`` stays the caller's to close.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing, contextmanager
from types import TracebackType
from typing import Any, Unpack

import orjson

from ms8_client import errors
from ms8_client.protocol import JOB_FIELDS, Job, SendOptions, Sent
from shared import idempotency
from shared import queue as core
from shared.db import Database, is_connection_error


class LocalJobQueue:
    def __init__(self, db: Database, *, principal: str = "local",
                 recheck_interval: float = 30.0) -> None:
        self._db = db
        self._principal = principal
        self._recheck_interval = recheck_interval
        self._watcher: core.JobWatcher | None = None
        self._watcher_lock = asyncio.Lock()

    async def __aenter__(self) -> LocalJobQueue:
        return self

    async def __aexit__(self, _type: type[BaseException] | None, _error: BaseException | None,
                        _tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.stop()

    async def add(self, queue: str, data: Any = None, *, idempotency_key: str | None = None,
                  **options: Unpack[SendOptions]) -> Sent:
        with _translated():
            spec = core.JobSpec.of(queue, data, **options)
            if idempotency_key is None:
                result = await core.send_spec(self._db, spec)
                return Sent(result.id, result.created)
            async with idempotency.once(self._db, self._principal, idempotency_key,
                                        _fingerprint(spec)) as claim:
                if claim.replay is not None:
                    first = orjson.loads(claim.replay.body_json)
                    return Sent(first["id"], False)
                result = await core.send_spec(self._db, spec, conn=claim.conn)
                claim.record(201 if result.created else 200, orjson.dumps(
                    {"id": result.id, "created": result.created}).decode())
                return Sent(result.id, result.created)

    async def get_status(self, job_id: int) -> Job:
        with _translated():
            return _job(await core.get_job(self._db, job_id))

    async def cancel(self, job_id: int) -> Job:
        with _translated():
            if not await core.cancel(self._db, [job_id]):
                job = await core.get_job(self._db, job_id)
                raise errors.InvalidState(
                    f"cannot cancel job {job.id}: it is {job.state}; only waiting or active "
                    "jobs can be", code="invalid_state")
            return _job(await core.get_job(self._db, job_id))

    async def wait_for_end(self, job_id: int, timeout: float | None = None) -> Job:
        with _translated():
            watcher = await self._started_watcher()
            return _job(await watcher.wait(job_id, timeout))

    async def progress(self, job_id: int) -> AsyncGenerator[Job, None]:
        with _translated():
            watcher = await self._started_watcher()
            async with aclosing(watcher.changes(job_id)) as changes:
                async for job in changes:
                    yield _job(job)

    async def _started_watcher(self) -> core.JobWatcher:
        async with self._watcher_lock:
            if self._watcher is None:
                watcher = core.JobWatcher(self._db, recheck_interval=self._recheck_interval)
                await watcher.start()
                self._watcher = watcher
            return self._watcher


def _job(job: core.Job) -> Job:
    return Job(**{name: getattr(job, name) for name in JOB_FIELDS})


def _fingerprint(spec: core.JobSpec) -> str:
    """The same job sent again has the same fingerprint (data compared as parsed)."""
    fields = {name: getattr(spec, name) for name in spec.__slots__ if name != "data_json"}
    fields["data"] = orjson.loads(spec.data_json)
    text = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(text).hexdigest()


@contextmanager
def _translated() -> Iterator[None]:
    """The core's errors as those of ``ms8_client.errors`` (the cause kept)."""
    try:
        yield
    except core.InvalidInput as error:
        raise errors.InvalidInput(error.message, code="invalid_body",
                                  field=error.field) from error
    except core.NotFound as error:
        raise errors.NotFound(str(error), code="not_found") from error
    except (core.InvalidState, core.SingletonTaken) as error:
        raise errors.InvalidState(str(error), code="invalid_state") from error
    except idempotency.KeyReused as error:
        raise errors.IdempotencyKeyReused(str(error), code="idempotency_key_reused") from error
    except TimeoutError:
        raise  # a wait that timed out (also one of the database's connection errors)
    except Exception as error:
        if is_connection_error(error):
            raise errors.Unavailable(f"the database cannot be reached: {error}",
                                     code="database_unavailable") from error
        raise
