"""The monitoring files: alert rules checked and unit-tested by promtool, and every
metric that a rule or a dashboard panel reads is one the code exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.metric_names import series_names

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "ops" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "ms8-jobs.json"
_METRIC = re.compile(r"\b((?:ms8|process|python)_[a-z0-9_]+)")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("MS8_REQUIRE_PROMTOOL") == "1":
            pytest.fail("MS8_REQUIRE_PROMTOOL=1 but promtool is not installed "
                        "(scripts/setup --with-system-tools installs Debian's prometheus)")
        print("promtool is missing: the alert rules are not checked "
              "(apt-get install prometheus, or scripts/setup --with-system-tools)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return path


def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    tool = promtool()
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


# What the person on call must be woken or warned for, and the rule that says it.
REQUIRED_ALERTS = {
    "MS8QueueWaitingTooLong": "queue age", "MS8QueueDepthHigh": "queue depth",
    "MS8JobFailureRateHigh": "failure rate", "MS8JobsStalled": "stalled jobs",
    "MS8NightlyBatchLate": "the nightly batch not done by 04:00 UTC",
    "MS8NoWorkerAlive": "no worker alive", "MS8DatabaseUnreachable": "database unreachable",
    "MS8DeadLettersGrowing": "dead-letter growth", "MS8SourceDown": "a source down",
    "MS8QueueUnserved": "a queue no worker serves",
}


def test_every_concern_has_its_alert() -> None:
    missing = {name: what for name, what in REQUIRED_ALERTS.items()
               if name not in {rule["alert"] for rule in alerts()}}
    assert missing == {}


def test_every_alert_is_fired_by_a_rule_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"]
             if case.get("exp_alerts")}
    assert {rule["alert"] for rule in alerts()} - fired == set()


def test_every_alert_links_a_section_of_the_runbook() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {github_anchor(line.lstrip("#").strip())
               for line in runbook.splitlines() if line.startswith("## ")}
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == "docs/runbook.md" and anchor in anchors, (rule["alert"], url)
        assert rule["labels"]["severity"] in ("warning", "critical")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces → '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


def test_rules_and_dashboard_read_only_metrics_that_exist() -> None:
    names = series_names()
    exprs = [rule["expr"] for rule in alerts()] + dashboard_exprs()
    used = {name for expr in exprs for name in _METRIC.findall(expr)}
    assert used, "no metric found in the expressions"
    assert used - names == set()
    assert {"ms8_queue_oldest_waiting_seconds", "ms8_queue_finished_jobs_total",
            "ms8_source_breaker_state", "process_resident_memory_bytes"} <= used


def test_the_dashboard_parses_and_has_a_panel_per_concern() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "ms8-jobs"
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource"}
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["targets"] and panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["expr"].count("(") == t["expr"].count(")") for t in panel["targets"])
