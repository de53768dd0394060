"""The Procfile and docker-compose.yml start processes that exist, the same ones, and
serve the workers' metrics on ports that do not clash; the image holds every package."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from setuptools import find_namespace_packages

from analytics.settings import AnalyticsSettings
from shared.healthcheck import url_for
from stub.__main__ import parser as stub_parser
from worker.cli import build_parser, overlay
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def module_of(command: list[str] | str) -> str:
    words = command.split() if isinstance(command, str) else command
    assert words[:2] == ["python", "-m"], words
    return words[2]


def test_procfile_runs_each_process_and_migrates_on_release() -> None:
    entries = procfile()
    assert set(entries) == {"release", "web", "worker", "scheduler"}
    assert module_of(entries["release"]) == "shared.migrate"
    for command in entries.values():
        assert importlib.util.find_spec(module_of(command)) is not None, command


def test_compose_runs_the_procfile_processes_against_its_postgres() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "api", "worker", "scheduler"} <= set(services)
    entries = procfile()
    assert module_of(services["api"]["command"]) == module_of(entries["web"])
    assert module_of(services["worker"]["command"]) == module_of(entries["worker"])
    assert module_of(services["scheduler"]["command"]) == module_of(entries["scheduler"])
    assert module_of(services["migrate"]["command"]) == module_of(entries["release"])
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("migrate", "api", "worker", "scheduler"):
        assert "@postgres:5432/" in services[name]["environment"]["DATABASE_URL"]
    for name in ("api", "worker", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully")


def test_compose_file_is_valid_for_the_compose_client() -> None:
    if shutil.which("docker-compose") is None:
        if os.environ.get("MS8_REQUIRE_BROWSER") == "1":  # the full (CI) run
            pytest.fail("docker-compose is not installed (scripts/setup --with-system-tools)")
        pytest.skip("no docker-compose client")
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def shell_words(command: str, env: dict[str, str]) -> list[str]:
    """The words of a Procfile command as sh would pass them (``${NAME:-default}``)."""
    def expand(match: re.Match[str]) -> str:
        return env.get(match[1]) or match[2]

    return re.sub(r"\$\{(\w+):-([^}]*)\}", expand, command).split()


def worker_metrics_port(words: list[str], env: dict[str, str]) -> int | None:
    """The metrics port a worker started with these words and environment serves on."""
    args = build_parser().parse_args(words[3:])
    return WorkerSettings.from_env(overlay(args, env)).metrics_port


def test_procfile_worker_serves_metrics_on_the_platform_port_or_9101() -> None:
    command = procfile()["worker"]
    assert worker_metrics_port(shell_words(command, {}), {}) == 9101
    assert worker_metrics_port(shell_words(command, {"PORT": "5123"}), {}) == 5123


def test_compose_workers_serve_metrics_on_a_host_port_each() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    worker = services["worker"]
    port = worker_metrics_port(worker["command"], worker["environment"])
    assert port is not None
    [mapping] = worker["ports"]
    host, container = mapping.rsplit(":", 1)
    assert int(container) == port
    first, last = (int(p) for p in host.split(":")[-1].split("-"))
    assert last - first + 1 == worker["deploy"]["replicas"]  # one host port per replica
    published = [int(m.rsplit(":", 1)[0].split(":")[-1].split("-")[0])
                 for name, service in services.items() if name != "worker"
                 for m in service.get("ports", [])]
    assert not set(published) & set(range(first, last + 1))


def test_compose_runs_the_stub_and_points_the_workers_at_it() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    stub = services["stub"]
    assert stub["command"] == ["python", "-m", "stub", "--host", "0.0.0.0"]
    args = stub_parser(stub["environment"]).parse_args(stub["command"][3:])
    assert f"127.0.0.1:{args.port}:{args.port}" in stub["ports"]
    sources = AnalyticsSettings.from_env(services["worker"]["environment"]).sources
    assert {s.name for s in sources} == set(args.sources.split(","))
    assert {s.base_url for s in sources} == {f"http://stub:{args.port}/{s.name}"
                                             for s in sources}


def packaged() -> list[str]:
    """The packages a wheel holds (``[tool.setuptools] packages``)."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]


def image_copies() -> set[str]:
    """What the Dockerfile copies from the repository into its build stage."""
    return set(re.findall(r"^COPY (\S+) \./\S*$", (ROOT / "Dockerfile").read_text(), re.M))


def test_the_wheel_packages_every_runtime_package_of_the_repository() -> None:
    found = set(find_namespace_packages(
        str(ROOT), include=[f"{top}*" for top in
                            ("analytics", "api", "ms8_client", "scheduler", "shared", "stub",
                             "worker")],
        exclude=["*.__pycache__", "*.__pycache__.*"]))
    found |= {"shared._sql.migrations", "shared._sql.queries"}  # sql/, mapped
    assert set(packaged()) == found
    assert not {name.split(".")[0] for name in packaged()} & {"bench", "devstack", "tests"}


def test_the_image_copies_the_runtime_packages_and_the_sql_only() -> None:
    tops = {name.split(".")[0] for name in packaged()}
    assert image_copies() == tops | {"pyproject.toml", "README.md", "sql"}


def test_the_image_installs_a_wheel_as_a_user_of_its_own() -> None:
    text = (ROOT / "Dockerfile").read_text()
    final = text.rsplit("\nFROM ", 1)[1]  # the stage that runs
    assert "pip install -e" not in text and "pip install --no-deps ." in text
    assert re.search(r"^USER (?!root)\w+$", final, re.M)
    assert "COPY --from=build /opt/ms8 /opt/ms8" in final and "\nCOPY " not in final.replace(
        "COPY --from=build", "")
    # The dependencies are installed before any source is copied: their layer stays cached.
    build = text.split("\nFROM ", 2)[1]
    assert build.index("pip install -r requirements.txt") < build.index("COPY shared")
    [healthcheck] = re.findall(r'CMD \["python", "-m", "([\w.]+)"\]\s*$',
                               final.split("HEALTHCHECK", 1)[1].split("\nCMD", 1)[0], re.M)
    assert importlib.util.find_spec(healthcheck) is not None
    assert "ENV PYTHONUNBUFFERED=1" in final and "MS8_ENV=production" in final


def test_compose_runs_the_procfile_commands_word_for_word() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    entries = procfile()
    for service, entry in [("api", "web"), ("worker", "worker"), ("scheduler", "scheduler"),
                           ("migrate", "release")]:
        assert services[service]["command"] == shell_words(entries[entry], {}), service


def test_compose_checks_the_health_of_what_answers_http() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("api", "worker"):
        service = services[name]
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "shared.healthcheck"]
        url = url_for(service["command"], service["environment"])
        assert url is not None, name
    assert url_for(services["api"]["command"], services["api"]["environment"]).endswith(
        f":{services['api']['environment']['PORT']}/health/live")
    assert services["worker"]["depends_on"]["stub"]["condition"] == "service_healthy"
    for name in ("postgres", "stub"):
        assert services[name]["healthcheck"]["test"]


def test_the_image_is_slim_and_installs_the_runtime_dependencies_only(tmp_path: Path) -> None:
    """The requirements the build stage writes, computed as it computes them: the
    project's dependencies, none of an extra (the embedded PostgreSQL, the dev tools)."""
    text = (ROOT / "Dockerfile").read_text()
    assert all(base.endswith("-slim") for base in re.findall(r"^FROM (\S+)", text, re.M))
    [code] = re.findall(r'^RUN python -c "(.+)" > requirements\.txt', text, re.M)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    written = subprocess.run(["sh", "-c", f'"{sys.executable}" -c "{code}"'], cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout.split("\n")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert [line for line in written if line] == project["dependencies"]
    extras = {req for reqs in project["optional-dependencies"].values() for req in reqs}
    assert not extras & set(written)
