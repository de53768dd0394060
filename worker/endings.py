"""How a run's end is counted, timed and logged: once its result is in the database.

A handler's outcome is only a proposal until the completer has reported it: the report
may wait out an outage, be refused (an output the database cannot store fails the job
instead), find the job held by another worker, or become stale (the job was reclaimed
and fetched again). So a completed or failed run is counted in
``ms8_worker_jobs_finished_total`` when the completer says what became of it, and as
that: a refused completion counts as failed, a report that found the job gone as lost.
Runs that end with nothing to report (cancelled, lost, released) count at once; a run
interrupted by a database outage counts as released once its job is given back. The run
time goes to ``ms8_worker_job_run_seconds`` by the state saved (completed, retry,
failed, released, lost, dropped) or the outcome (cancelled, lost, released).

Every end is one log line with the queue, job id, attempt, outcome, run time and worker
id: ordinary ends (completed, retried, cancelled, released) at ``MS8_JOB_LOG_LEVEL``
(info or debug), a failure that ends the job for good and a job lost to another worker
at warning, a result the database refused at error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.logging import get_logger
from shared.queue import Job
from worker.completer import DROPPED, RELEASED
from worker.completer import LOST as LOST_SAVED
from worker.executor import COMPLETED, FAILED, INTERRUPTED, LOST, Outcome
from worker.metrics import WorkerMetrics

log = get_logger("worker.jobs")


@dataclass(slots=True)
class _Pending:
    job: Job
    outcome: Outcome
    retry_at: datetime | None = None


class Endings:
    def __init__(self, metrics: WorkerMetrics, worker_id: str, level: str = "info") -> None:
        self._metrics = metrics
        self._worker_id = worker_id
        self._level = level
        # By attempt (the Job fetched), never by job id: a job fetched again may end
        # here before the report of its previous attempt comes back.
        self._pending: dict[int, _Pending] = {}

    def reporting(self, job: Job, outcome: Outcome) -> None:
        """The outcome went to the completer; it counts once saved."""
        self._pending[id(job)] = _Pending(job, outcome)

    def retrying(self, job: Job, at: datetime) -> None:
        """The saved failure sent the job to retry at ``at``."""
        pending = self._pending.get(id(job))
        if pending is not None:
            pending.retry_at = at

    def forget(self, jobs: Iterable[Job]) -> None:
        """Results the completer dropped unsent as stale: never saved."""
        for job in jobs:
            self._pending.pop(id(job), None)

    def saved(self, job: Job, state: str) -> None:
        """The completer reported ``job``'s result: ``state`` is what became of it
        (completed, retry, failed, released, lost or dropped)."""
        pending = self._pending.pop(id(job), None)
        if pending is None:
            return
        outcome = pending.outcome
        if state in (COMPLETED, LOST_SAVED, DROPPED, RELEASED):
            kind = state
        else:  # retry or failed: a failed run, a completion the database refused, or a
            # job given back at its crash limit
            kind = FAILED if outcome.kind in (COMPLETED, INTERRUPTED) else outcome.kind
        self._metrics.job_finished(job.queue, kind)
        self._metrics.job_saved(job.queue, state, outcome.seconds)
        fields = self._fields(job, kind, outcome)
        if state == COMPLETED:
            getattr(log, self._level)("job completed", **fields)
        elif state == "retry":
            getattr(log, self._level)("job failed, will retry", error=_error(outcome),
                                      retry_at=_iso(pending.retry_at), **fields)
        elif state == "failed":
            log.warning("job failed for good", error=_error(outcome), **fields)
        elif state == RELEASED:
            getattr(log, self._level)("job handed back: the database went away while it "
                                      "ran", **fields)
        elif state == LOST_SAVED:
            log.warning("job lost: another worker holds it now", **fields)
        else:
            log.error("job result dropped: the database refused it", **fields)

    def ended(self, job: Job, outcome: Outcome) -> None:
        """A run that ended with nothing to report."""
        self._metrics.job_finished(job.queue, outcome.kind)
        self._metrics.job_saved(job.queue, outcome.kind, outcome.seconds)
        fields = self._fields(job, outcome.kind, outcome)
        if outcome.kind == LOST:
            log.warning("job lost: another worker holds it now", **fields)
        else:
            getattr(log, self._level)(f"job {outcome.kind}", **fields)

    def _fields(self, job: Job, kind: str, outcome: Outcome) -> dict[str, Any]:
        return {"queue": job.queue, "job_id": job.id, "attempt": job.attempt,
                "outcome": kind, "seconds": round(outcome.seconds, 4),
                "worker_id": self._worker_id}


def _error(outcome: Outcome) -> str:
    if outcome.failure is None:
        return "the database refused the job's output"
    return outcome.failure.message[:500]


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
