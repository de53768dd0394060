"""Schemathesis hooks for the contract test (loaded through ``SCHEMATHESIS_HOOKS``).

Only these failures are set aside, each in its exact form:

- a schema-valid body refused with 422 for a rule that JSON Schema cannot state: a cron
  expression or time zone that does not exist (``cron``, ``timezone``: decided by the cron
  grammar and the IANA database, not a pattern), a queue named as its own dead-letter
  queue (the body field equals the path parameter), or a NUL (``\\u0000``) inside job
  data (``JsonValue`` is any JSON, described without the recursive schema that could
  forbid NUL at every depth: code generators cannot handle one);
- a "schema-valid" request of the stateful phase whose path parameter is null: a link
  inferred from a nullable field (``batch_id`` of a job) that was null in that response,
  so the request was not schema-valid at all (``/batches/None``).

Every other failure of every check fails the run.
"""

from __future__ import annotations

from typing import Any

import schemathesis

SEMANTIC_FIELDS = {("POST", "/schedules"): {"cron", "timezone"},
                   ("PATCH", "/schedules/{name}"): {"cron", "timezone"}}


def _error_field(response: Any) -> str | None:
    try:
        body = response.json()
    except Exception:
        return None
    return body.get("field") if isinstance(body, dict) else None


def _refused_nul_in_json_value(response: Any) -> bool:
    """The refusal of ``api.schemas.json_value``, word for word."""
    try:
        body = response.json()
    except Exception:
        return False
    if not isinstance(body, dict) or body.get("code") != "invalid_body":
        return False
    return str(body.get("message", "")).endswith(
        ("strings cannot contain NUL (\\u0000)", "keys cannot contain NUL (\\u0000)"))


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    if response.status_code == 400 and None in (case.path_parameters or {}).values():
        return False
    if response.status_code != 422:
        return True
    if _refused_nul_in_json_value(response):
        return False
    field = _error_field(response)
    operation = (case.operation.method.upper(), case.operation.path)
    if field in SEMANTIC_FIELDS.get(operation, set()):
        return False
    if operation == ("PUT", "/queues/{name}") and field == "dead_letter":
        body = case.body if isinstance(case.body, dict) else {}
        return body.get("dead_letter") != case.path_parameters.get("name")
    return True
