"""The Railway config-as-code files: one per service, each parses, builds the image,
starts the Procfile's command (which exists, with flags it takes), migrates before the
api only, checks health where a process answers HTTP without a key, and drains for
longer than the process needs to stop cleanly."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
import yaml

from api.app import all_endpoints
from api.config import ApiSettings
from tests.unit.test_deploy_files import ROOT, module_of, procfile, shell_words
from worker.cli import build_parser
from worker.settings import WorkerSettings
from worker.shutdown import UNWIND_SECONDS

SERVICES = {"api": "web", "worker": "worker", "scheduler": "scheduler"}  # → Procfile entry
NUMBERS = ("healthcheckTimeout", "restartPolicyMaxRetries", "numReplicas", "overlapSeconds",
           "drainingSeconds")
# What a stop needs beyond the grace period with the database up: reporting results and
# handing jobs back take milliseconds; this is the margin the drain keeps on top.
HAND_BACK_MARGIN = 10


def config(service: str) -> dict[str, Any]:
    return json.loads((ROOT / "railway" / f"{service}.json").read_text())


def unwrapped(command: str) -> str:
    """A start command without the ``/bin/sh -c "exec …"`` Railway needs to expand
    variables (it runs a Dockerfile service's command in exec form)."""
    words = shlex.split(command)
    if words[:2] == ["/bin/sh", "-c"]:
        assert len(words) == 3 and words[2].startswith("exec "), words
        return words[2].removeprefix("exec ")
    assert "$" not in command, "exec form does not expand variables: wrap it in /bin/sh -c"
    return command


def test_there_is_one_file_per_service_and_no_other() -> None:
    assert {p.stem for p in (ROOT / "railway").glob("*.json")} == set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_each_builds_the_dockerfile_and_starts_the_procfile_command(service: str) -> None:
    cfg = config(service)
    assert cfg["$schema"] == "https://railway.com/railway.schema.json"
    assert cfg["build"]["builder"] == "DOCKERFILE"
    assert (ROOT / cfg["build"]["dockerfilePath"]).is_file()
    assert unwrapped(cfg["deploy"]["startCommand"]) == procfile()[SERVICES[service]]
    assert cfg["deploy"]["restartPolicyType"] in ("ON_FAILURE", "ALWAYS")
    for field in NUMBERS:  # Railway rejects a whole file that has "10" for 10
        value = cfg["deploy"].get(field)
        assert value is None or type(value) is int, (field, value)


def test_only_the_api_migrates_before_it_deploys() -> None:
    assert config("api")["deploy"]["preDeployCommand"] == [procfile()["release"]]
    assert module_of(procfile()["release"]) == "shared.migrate"
    assert "preDeployCommand" not in config("worker")["deploy"]
    assert "preDeployCommand" not in config("scheduler")["deploy"]


def test_the_worker_command_takes_its_flags_and_serves_metrics_on_port() -> None:
    words = shell_words(unwrapped(config("worker")["deploy"]["startCommand"]),
                        {"PORT": "7000"})
    args = build_parser().parse_args(words[3:])
    assert args.metrics_port == "7000"


def test_health_checks_are_answered_without_a_key() -> None:
    path = config("api")["deploy"]["healthcheckPath"]
    [endpoint] = [e for e in all_endpoints() if e.path == path and e.method == "GET"]
    assert endpoint.scope is None
    # The worker's metrics server answers on $PORT once the worker has started.
    assert config("worker")["deploy"]["healthcheckPath"] == "/metrics"
    assert "healthcheckPath" not in config("scheduler")["deploy"]  # no HTTP at all


def test_the_drain_outlasts_each_clean_stop() -> None:
    worker_grace = WorkerSettings.from_env({}).grace_seconds
    assert config("worker")["deploy"]["drainingSeconds"] >= (
        worker_grace + UNWIND_SECONDS + HAND_BACK_MARGIN)
    api_grace = ApiSettings.from_env({}, dev=True).shutdown_grace_seconds
    assert config("api")["deploy"]["drainingSeconds"] >= api_grace + HAND_BACK_MARGIN


def seconds(period: str) -> int:
    """A compose duration such as ``45s`` or ``1m30s``, in seconds."""
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", period)
    assert match and period, period
    return int(match[1] or 0) * 60 + int(match[2] or 0)


def test_compose_waits_as_long_as_railway_drains() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service in SERVICES:
        assert seconds(services[service]["stop_grace_period"]) == (
            config(service)["deploy"]["drainingSeconds"]), service


def test_the_guide_names_every_config_file_and_setting() -> None:
    guide = (ROOT / "docs" / "deploy" / "railway.md").read_text()
    for service in SERVICES:
        assert f"/railway/{service}.json" in guide
        assert f"`{procfile()[SERVICES[service]].split(' --')[0]}" in guide
    for needed in ("${{Postgres.DATABASE_URL}}", "DATABASE_DIRECT_URL", "MS8_API_KEYS",
                   "numReplicas", "drainingSeconds", "MS8_WORKER_GRACE_SECONDS"):
        assert needed in guide, needed
    assert f"`drainingSeconds` ({config('worker')['deploy']['drainingSeconds']})" in guide


def test_the_operations_guide_gives_the_same_stop_times() -> None:
    """Its table of grace and drain (what a reader copies) says what the files say."""
    guide = (ROOT / "docs" / "operations.md").read_text()
    section = guide.split("\n## Stopping: grace and drain\n", 1)[1].split("\n## ", 1)[0]
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    rows = {cells[0]: cells[-2:] for line in section.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    for service in SERVICES:
        assert rows[service] == [services[service]["stop_grace_period"],
                                 str(config(service)["deploy"]["drainingSeconds"])], service


def test_the_railway_guides_table_says_what_each_file_sets() -> None:
    guide = (ROOT / "docs" / "deploy" / "railway.md").read_text()
    rows = {cells[0]: cells for line in guide.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    for service in SERVICES:
        deploy = config(service)["deploy"]
        _, path, _, before, health, replicas, drain = rows[service]
        assert path == f"`/railway/{service}.json`"
        assert before == (f"`{deploy['preDeployCommand'][0]}`"
                          if "preDeployCommand" in deploy else "—")
        assert health == (f"`{deploy['healthcheckPath']}`"
                          if "healthcheckPath" in deploy else "—")
        assert (replicas, drain) == (str(deploy["numReplicas"]),
                                     f"{deploy['drainingSeconds']} s"), service
