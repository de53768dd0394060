"""``python -m api --help``: the API's settings, generated from the settings themselves.

The API takes no flags (a platform starts it the same way everywhere; the environment
configures it), but an operator still asks it what it reads: ``--help`` lists every
variable with the default ``ApiSettings.from_env`` computes, and anything else on the
command line is refused with exit 2 rather than ignored.
"""

from __future__ import annotations

import argparse

from api.config import MIN_SECRET, ApiSettings
from shared.settings_help import Documented, describe, shared_settings

DESCRIPTION = """\
Serve the ms8-jobs HTTP API and dashboard with uvicorn: submit jobs, watch them, act on
them. Configured by the environment only.

Examples:
  MS8_ENV=dev python -m api                          dev: no keys, 127.0.0.1:8000
  PORT=8080 MS8_API_KEYS="ci:<secret>:read,write" python -m api
"""

ENVIRONMENT = (
    Documented("MS8_API_HOST", "host", "address to listen on",
               derived="0.0.0.0; 127.0.0.1 in dev unless PORT is given (keyless with PORT: "
               "refused unless set)"),
    Documented("PORT", "port", "port to listen on"),
    Documented("MS8_API_KEYS", "keys", "API keys as name:secret:scopes entries separated by "
               f"';' (scopes read, write; secrets of {MIN_SECRET}+ characters)",
               derived="none; required outside dev"),
    Documented("MS8_METRICS_TOKEN", "metrics_token", "a scraper's bearer token for /metrics "
               "only, different from every key", derived="none"),
    Documented("MS8_API_SESSION_SECRET", "session_secret", "signs dashboard session cookies "
               "(32+ characters); without it they are signed with the keys",
               derived="none"),
    Documented("MS8_API_SESSION_HOURS", "session_hours", "how long a dashboard login lasts"),
    Documented("MS8_API_SECURE_COOKIES", "secure_cookies", "session cookies sent over "
               "HTTPS only", derived="true outside dev"),
    Documented("MS8_ALLOWED_HOSTS", "allowed_hosts", "Host names the API answers, "
               "comma-separated, '*' for any", derived="any; loopback names in dev"),
    Documented("MS8_API_MAX_BODY_BYTES", "max_body_bytes", "largest request body"),
    Documented("MS8_API_MAX_JOBS_PER_REQUEST", "max_jobs_per_request",
               "most jobs in one POST /jobs/bulk"),
    Documented("MS8_API_MAX_JSON_VALUES", "max_json_values", "most JSON values in one body"),
    Documented("MS8_API_MAX_HEADER_BYTES", "max_header_bytes", "largest request head"),
    Documented("MS8_API_HEADER_TIMEOUT_SECONDS", "header_timeout_seconds",
               "time a request head may take to arrive"),
    Documented("MS8_API_BODY_TIMEOUT_SECONDS", "body_timeout_seconds",
               "time a request body may take to arrive (then 408)"),
    Documented("MS8_API_SSE_PING_SECONDS", "sse_ping_seconds",
               "keep-alive comment interval of event streams"),
    Documented("MS8_API_SHUTDOWN_GRACE_SECONDS", "shutdown_grace_seconds",
               "on SIGTERM, how long requests and event streams may finish"),
    Documented("MS8_API_WORKER_SEEN_SECONDS", "worker_seen_seconds",
               "a worker seen this recently counts as serving its queues"),
    Documented("MS8_API_AUTH_FAILURES_PER_MINUTE", "auth_failures_per_minute",
               "failed authentications (wrong key or login) allowed per client address and "
               "minute, then 429"),
)


def epilog(defaults: ApiSettings) -> str:
    lines = describe("Settings (environment; durations in seconds):", defaults, ENVIRONMENT)
    lines += [
        *shared_settings(("DATABASE_URL", "DATABASE_DIRECT_URL", "MS8_ENV", "MS8_SCHEMA",
                          "MS8_POOL_MAX", "MS8_PGBOUNCER", "MS8_AUTO_MIGRATE", "MS8_LOG_LEVEL",
                          "MS8_LOG_FORMAT")),
        "",
        "Signals: SIGTERM stops accepting, lets requests and event streams end for the",
        "shutdown grace, closes the pool and exits 0.",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    defaults = ApiSettings.from_env({}, dev=True)  # the defaults, as computed
    return argparse.ArgumentParser(
        prog="python -m api", description=DESCRIPTION, epilog=epilog(defaults),
        formatter_class=argparse.RawDescriptionHelpFormatter)
