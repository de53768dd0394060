"""structlog, configured once for every process.

JSON lines when stderr is not a terminal (production, CI), readable columns in a terminal.
Secrets never reach the output: passwords inside connection URLs and values under
secret-looking keys are masked by a processor that runs before rendering.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any, TextIO, cast

import orjson
import structlog

_format: str | None = None  # the renderer configure_logging chose: "json" or "console"
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)([^@\s]+)(@)")
_SECRET_KEYS = ("password", "secret", "token", "api_key", "apikey", "authorization", "dsn")


def mask_secrets(text: str) -> str:
    """Replace the password of every URL in ``text`` with ***."""
    return _URL_PASSWORD.sub(r"\1***\3", text)


def _secret_key(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_KEYS)


# Log lines reuse a handful of key names; deciding each once keeps a line cheap (the
# worker writes one per job). Bounded, so that keys made up at run time cannot grow it.
_secret_keys: dict[str, bool] = {}


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if value is None:
            continue
        secret = _secret_keys.get(key)
        if secret is None:
            secret = _secret_key(key)
            if len(_secret_keys) < 4096:
                _secret_keys[key] = secret
        if secret:
            event[key] = "***"
        elif isinstance(value, str) and "://" in value:  # a URL could carry a password
            event[key] = mask_secrets(value)
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of the write.

    Loggers are cached on first use; one cached while stderr was replaced (captured
    output, a test runner) would otherwise keep writing to a stream that is closed by now.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = _CurrentStderr()


def configure_logging(process: str, level: str = "info", fmt: str = "auto") -> None:
    """Set up structlog (and route stdlib logging through the same renderer)."""
    global _format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    _format = fmt
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if fmt == "json"
        # Plain tracebacks: the rich formatter would print local variables (and secrets).
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(),
                                           exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if fmt == "json" else _noop,
        _redact,
    ]
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _STDERR)),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(process=process)

    handler = logging.StreamHandler(_STDERR)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO) if numeric < logging.INFO else numeric)
    # httpx logs every request at info: a line per call to a microservice, 120,000 a
    # night. Its warnings and errors still come through.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


def _json_line(event: dict[str, Any], **kw: Any) -> str:
    """orjson where it can (a few times faster than json, and the worker logs every job's
    end); json for what orjson refuses, such as an integer beyond 64 bits."""
    try:
        return orjson.dumps(event, default=kw.get("default"),
                            option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(event, **kw)


def configured_format() -> str | None:
    """``json`` or ``console`` once ``configure_logging`` ran, else None."""
    return _format


def _noop(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    return event


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
