"""The queue core: the only code that speaks SQL about jobs. It knows nothing of HTTP or cron.

Every function takes the ``Database`` of the process first; those that write also take an
optional ``conn`` to run inside the caller's transaction.
"""

from shared.queue.batches import (
    create_batch,
    finish_batches,
    finish_pending_batches,
    get_batch,
    list_batches,
    seal_batch,
    send_batch,
)
from shared.queue.coalesce import SendCoalescer
from shared.queue.errors import InvalidInput, InvalidState, NotFound, QueueError, SingletonTaken
from shared.queue.fetch import (
    extend_deadline,
    fetch,
    heartbeat,
    next_start_after,
    release,
    set_progress,
)
from shared.queue.finish import (
    Failure,
    cancel,
    cancel_waiting,
    complete,
    complete_many,
    delete,
    fail,
    fail_many,
    resume,
)
from shared.queue.firings import FIRED, MISSED, FiringOutcome, fire_due, prune_firings, run_now
from shared.queue.fleet import Worker, list_workers, served_queues
from shared.queue.maintenance import (
    TIMEOUT_MESSAGE,
    Reclaimed,
    give_back_jobs,
    prune_history,
    prune_timelines,
    reclaim_lost_jobs,
    release_orphans,
    take_back_jobs,
)
from shared.queue.models import (
    ALL_STATES,
    FINISHED_STATES,
    WAITING_STATES,
    Batch,
    BatchTotals,
    FailResult,
    Job,
    QueuePolicy,
    Sent,
)
from shared.queue.one_job import cancel_job, delete_job, retry_job
from shared.queue.queues import (
    create_queue,
    declare_queue,
    get_queue,
    list_queues,
    pause_queue,
    redrive,
    resume_queue,
    update_queue,
)
from shared.queue.read import count_jobs, get_job, list_jobs
from shared.queue.rollups import Rollup, Timing, rollups
from shared.queue.samples import (
    FleetSample,
    QueueSample,
    fleet_samples,
    queue_samples,
    record_samples,
)
from shared.queue.schedules import (
    Firing,
    Schedule,
    create_schedule,
    delete_schedule,
    disable_schedule,
    enable_schedule,
    get_schedule,
    list_firings,
    list_schedules,
    update_schedule,
)
from shared.queue.send import (
    SCHEDULE_JOB_OPTIONS,
    SEND_OPTIONS,
    JobSpec,
    PlainJobs,
    send,
    send_many,
    send_plain,
    send_spec,
)
from shared.queue.stats import Stat, queue_stats
from shared.queue.validation import MAX_RUN_TIMEOUT_SECONDS, QUEUE_NAME, json_text
from shared.queue.watch import JobWatcher, wait_for_end
from shared.queue.window import Window

__all__ = [
    "ALL_STATES", "FINISHED_STATES", "WAITING_STATES", "Batch", "BatchTotals", "FailResult",
    "Failure", "InvalidInput", "InvalidState", "Job", "JobSpec", "NotFound", "PlainJobs",
    "QueueError",
    "QueuePolicy", "Reclaimed", "Sent", "SingletonTaken", "cancel", "cancel_job", "cancel_waiting",
    "complete", "delete_job", "retry_job",
    "complete_many", "count_jobs", "create_batch", "create_queue", "declare_queue", "delete",
    "extend_deadline", "fail",
    "fail_many", "fetch", "give_back_jobs",
    "finish_batches", "finish_pending_batches", "get_batch", "get_job", "get_queue",
    "heartbeat", "list_batches", "list_jobs", "list_queues", "next_start_after",
    "pause_queue", "prune_history", "reclaim_lost_jobs", "redrive", "release",
    "release_orphans", "resume", "resume_queue", "seal_batch", "send", "Stat", "queue_stats",
    "SendCoalescer", "send_batch", "send_many", "send_plain", "send_spec", "set_progress",
    "take_back_jobs",
    "update_queue",
    "JobWatcher", "wait_for_end",
    # the fleet, and the rules every front end checks input against
    "Worker", "list_workers", "served_queues", "MAX_RUN_TIMEOUT_SECONDS", "QUEUE_NAME",
    "TIMEOUT_MESSAGE", "json_text", "FIRED", "MISSED", "SEND_OPTIONS", "SCHEDULE_JOB_OPTIONS",
    # how the numbers moved
    "FleetSample", "QueueSample", "Rollup", "Timing", "Window", "fleet_samples",
    "prune_timelines", "queue_samples", "record_samples", "rollups",
    # schedules
    "Firing", "FiringOutcome", "Schedule", "create_schedule", "delete_schedule",
    "disable_schedule", "enable_schedule", "fire_due", "get_schedule", "list_firings",
    "list_schedules", "prune_firings", "run_now", "update_schedule",
]
