"""Job ends are counted and logged once their result is saved, at the right level."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from shared.queue import Failure, Job
from worker.endings import Endings
from worker.executor import Outcome
from worker.metrics import WorkerMetrics

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def job(job_id: int, attempt: int = 1) -> Job:
    values = {f.name: None for f in dataclasses.fields(Job)}
    values.update(id=job_id, queue="q", state="active", attempt=attempt, data={})
    return Job(**values)


def count(metrics: WorkerMetrics, outcome: str) -> float:
    return metrics.registry.get_sample_value(
        "ms8_worker_jobs_finished_total", {"queue": "q", "outcome": outcome}) or 0.0


@pytest.fixture
def metrics() -> WorkerMetrics:
    return WorkerMetrics()


def test_a_completion_counts_and_logs_only_once_saved(metrics: WorkerMetrics) -> None:
    endings = Endings(metrics, "w1")
    done = job(1, attempt=2)
    with capture_logs() as logs:
        endings.reporting(done, Outcome("completed", 0.25, output=1))
        assert count(metrics, "completed") == 0 and logs == []
        endings.saved(done, "completed")
    assert count(metrics, "completed") == 1
    assert logs == [{"event": "job completed", "log_level": "info", "queue": "q", "job_id": 1,
                     "attempt": 2, "outcome": "completed", "seconds": 0.25,
                     "worker_id": "w1"}]
    sample = metrics.registry.get_sample_value(
        "ms8_worker_job_run_seconds_count", {"queue": "q", "outcome": "completed"})
    assert sample == 1


def test_the_level_of_ordinary_ends_is_a_setting(metrics: WorkerMetrics) -> None:
    endings = Endings(metrics, "w1", "debug")
    done = job(1)
    with capture_logs() as logs:
        endings.reporting(done, Outcome("completed", 0.1))
        endings.saved(done, "completed")
    assert [entry["log_level"] for entry in logs] == ["debug"]


def test_a_retry_is_info_and_a_final_failure_a_warning(metrics: WorkerMetrics) -> None:
    endings = Endings(metrics, "w1")
    retried, final = job(1), job(2, attempt=3)
    with capture_logs() as logs:
        for j in (retried, final):
            endings.reporting(j, Outcome("failed", 1.0, failure=Failure(j.id, "Boom: no")))
        endings.retrying(retried, NOW)
        endings.saved(retried, "retry")
        endings.saved(final, "failed")
    assert [(e["event"], e["log_level"], e["error"]) for e in logs] == [
        ("job failed, will retry", "info", "Boom: no"),
        ("job failed for good", "warning", "Boom: no")]
    assert logs[0]["retry_at"] == NOW.isoformat() and logs[1]["attempt"] == 3
    assert count(metrics, "failed") == 2


def test_a_refused_completion_counts_as_failed(metrics: WorkerMetrics) -> None:
    endings = Endings(metrics, "w1")
    refused = job(1)
    with capture_logs() as logs:
        endings.reporting(refused, Outcome("completed", 0.1, output="a\x00b"))
        endings.saved(refused, "failed")
    assert (count(metrics, "completed"), count(metrics, "failed")) == (0, 1)
    assert logs[0]["event"] == "job failed for good" and logs[0]["log_level"] == "warning"


def test_a_run_interrupted_by_an_outage_counts_as_released_once_given_back(
    metrics: WorkerMetrics,
) -> None:
    endings = Endings(metrics, "w1")
    back, poisoned = job(1), job(2)
    why = Failure(1, "interrupted: the database went away while it ran (OSError: gone)")
    with capture_logs() as logs:
        for j in (back, poisoned):
            endings.reporting(j, Outcome("interrupted", 0.5, failure=why))
        assert logs == [] and count(metrics, "released") == 0
        endings.saved(back, "released")
        endings.saved(poisoned, "failed")  # given back at its crash limit: failed
    assert (count(metrics, "released"), count(metrics, "failed")) == (1, 1)
    assert count(metrics, "interrupted") == 0
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("job handed back: the database went away while it ran", "info"),
        ("job failed for good", "warning")]


def test_each_attempt_counts_once_even_when_the_next_one_is_fetched_first(
    metrics: WorkerMetrics,
) -> None:
    """A job retried at once can be fetched again before the report of its previous
    attempt comes back: both attempts count, each once; a result dropped unsent, none."""
    endings = Endings(metrics, "w1")
    first, again, stale = job(1, attempt=1), job(1, attempt=2), job(2)
    endings.reporting(first, Outcome("failed", 0.1, failure=Failure(1, "x")))
    endings.reporting(again, Outcome("completed", 0.1))
    endings.saved(first, "retry")
    endings.saved(again, "completed")
    endings.saved(first, "retry")  # told twice: counted once
    endings.reporting(stale, Outcome("completed", 0.1))
    endings.forget([stale])
    endings.saved(stale, "completed")
    assert (count(metrics, "failed"), count(metrics, "completed")) == (1, 1)


def test_a_report_that_found_the_job_gone_counts_as_lost(metrics: WorkerMetrics) -> None:
    endings = Endings(metrics, "w1")
    gone, dropped = job(1), job(2)
    with capture_logs() as logs:
        endings.reporting(gone, Outcome("completed", 0.1))
        endings.reporting(dropped, Outcome("failed", 0.1, failure=Failure(2, "x")))
        endings.saved(gone, "lost")
        endings.saved(dropped, "dropped")
    assert (count(metrics, "completed"), count(metrics, "lost"),
            count(metrics, "dropped")) == (0, 1, 1)
    assert [e["log_level"] for e in logs] == ["warning", "error"]


def test_runs_without_a_result_count_at_once(metrics: WorkerMetrics) -> None:
    endings = Endings(metrics, "w1")
    with capture_logs() as logs:
        endings.ended(job(1), Outcome("cancelled", 0.1))
        endings.ended(job(2), Outcome("lost", 0.1))
    assert (count(metrics, "cancelled"), count(metrics, "lost")) == (1, 1)
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("job cancelled", "info"), ("job lost: another worker holds it now", "warning")]
