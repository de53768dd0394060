"""Actions on one job for a person (the API, the dashboard, the CLI): done, or why not.

``cancel``, ``resume`` and ``delete`` act on many jobs and return the ids they changed;
a person acting on one job wants to hear why nothing happened. These raise ``NotFound``
for an unknown job and ``InvalidState`` naming its state and the states the action
applies to, so every front end explains a refusal in the same words.
"""

from __future__ import annotations

from shared.db import Database
from shared.queue.errors import InvalidState
from shared.queue.finish import cancel, delete, resume
from shared.queue.models import Job
from shared.queue.read import get_job

ALLOWED_STATES = {
    "cancel": "waiting or active",
    "retry": "failed or cancelled",
    "delete": "waiting or finished (cancel an active job first)",
}


async def cancel_job(db: Database, job_id: int) -> Job:
    """Cancel a waiting or active job; returns it cancelled."""
    if not await cancel(db, [job_id]):
        raise await _refusal(db, job_id, "cancel")
    return await get_job(db, job_id)


async def retry_job(db: Database, job_id: int) -> Job:
    """Send a failed or cancelled job back to the queue; returns it waiting."""
    if not await resume(db, [job_id]):
        raise await _refusal(db, job_id, "retry")
    return await get_job(db, job_id)


async def delete_job(db: Database, job_id: int) -> None:
    """Delete a waiting or finished job."""
    if not await delete(db, [job_id]):
        raise await _refusal(db, job_id, "delete")


async def _refusal(db: Database, job_id: int, action: str) -> InvalidState:
    job = await get_job(db, job_id)  # NotFound when there is no such job
    return InvalidState(f"cannot {action} job {job.id}: it is {job.state}; "
                        f"only {ALLOWED_STATES[action]} jobs can be")
