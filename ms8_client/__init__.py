"""A typed client of the ms8-jobs queue: one interface (``JobQueue``), two implementations.

    from ms8_client import HttpJobQueue            # over the HTTP API
    from ms8_client.local import LocalJobQueue     # over the core, in-process (imports the
                                                   # server's ``shared`` package)

Importing ``ms8_client`` itself pulls in httpx and nothing of the server.
"""

from ms8_client.errors import (
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidState,
    JobQueueError,
    NotFound,
    ServerError,
    Unauthorized,
    Unavailable,
)
from ms8_client.http import HttpJobQueue
from ms8_client.protocol import FINISHED_STATES, Job, JobQueue, SendOptions, Sent
from ms8_client.retrying import RetryPolicy

__all__ = [
    "FINISHED_STATES", "Forbidden", "HttpJobQueue", "IdempotencyKeyReused", "InvalidInput",
    "InvalidState", "Job", "JobQueue", "JobQueueError", "NotFound", "RetryPolicy",
    "SendOptions", "Sent", "ServerError", "Unauthorized", "Unavailable",
]
