"""What each chaos scenario measured, for RELIABILITY.md: written to
``.data/chaos/<scenario>.json`` (one file per scenario, the last run's) and listed at the
end of the test run (``RECORDED``, printed by the suite's terminal summary)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.chaos.audit import Audit

ROOT = Path(__file__).resolve().parents[3]
RECORDED: list[dict[str, Any]] = []


def out_dir() -> Path:
    return Path(os.environ.get("MS8_CHAOS_OUT", ROOT / ".data" / "chaos"))


def record(scenario: str, audit: Audit | None, **measured: Any) -> dict[str, Any]:
    """Write the scenario's numbers (the audit's counts, then what it measured itself)."""
    entry: dict[str, Any] = {"scenario": scenario, "at": datetime.now(UTC).isoformat(
        timespec="seconds")}
    if audit is not None:
        entry.update(audit.numbers())
    entry.update({k: round(v, 2) if isinstance(v, float) else v for k, v in measured.items()})
    directory = out_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{scenario}.json").write_text(json.dumps(entry, indent=2, default=str) + "\n")
    RECORDED.append(entry)
    return entry


def line(entry: dict[str, Any]) -> str:
    return f"{entry['scenario']}: " + ", ".join(
        f"{k}={v}" for k, v in entry.items() if k not in ("scenario", "at"))
