"""Clients generated from the running API's ``/openapi.json``, as other services will make
them: openapi-python-client (every operation generated, a job sent and read back) and
openapi-typescript (the types compile under ``tsc --strict``)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.api.server import ROOT, ApiProcess, api_process

SECRET = "generated-secret-0123456789abcdefghi"
ENV = {"MS8_API_KEYS": f"generated:{SECRET}:read,write", "MS8_ENV": "production"}
# Kept between runs (like .venv): installing them costs more than the test itself.
NODE_TOOLS = ROOT / ".data" / "tools" / "openapi-typescript"
NODE_PACKAGES = ("openapi-typescript@7", "typescript@5")
DATA = {"user_role": 42, "sources": ["skills-engine", None], "window": {"days": 1.5},
        "deep": [[[{"ok": True}]]]}


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiProcess]:
    with api_process({"DATABASE_URL": db_url, **ENV}, tmp_path / "api.log") as running:
        yield running


def document(api: ApiProcess, folder: Path) -> Path:
    path = folder / "openapi.json"
    reply = httpx.get(f"{api.url}/openapi.json", timeout=10,
                      headers={"Authorization": f"Bearer {SECRET}"})
    reply.raise_for_status()
    path.write_bytes(reply.content)
    return path


@pytest.mark.slow
def test_openapi_python_client_generates_every_operation_and_sends_a_job(
        api: ApiProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = document(api, tmp_path)
    package = tmp_path / "ms8_generated"
    bin_dir = str(Path(sys.executable).parent)  # its ruff, for the post-generation hooks
    result = subprocess.run(
        [os.path.join(bin_dir, "openapi-python-client"), "generate", "--path", str(spec),
         "--meta", "none", "--output-path", str(package)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Unable to" not in output and "Warning" not in output, output
    for operation in ("send_job", "send_jobs", "get_job"):
        assert (package / "api" / "jobs" / f"{operation}.py").exists(), output
    assert (package / "api" / "batches" / "create_batch.py").exists(), output

    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        generated = importlib.import_module("ms8_generated")
        send_job = importlib.import_module("ms8_generated.api.jobs.send_job")
        get_job = importlib.import_module("ms8_generated.api.jobs.get_job")
        models = importlib.import_module("ms8_generated.models")
        client = generated.AuthenticatedClient(base_url=api.url, token=SECRET)
        with client:
            sent = send_job.sync_detailed(
                client=client, body=models.JobSpec(queue="generated", data=DATA, priority=3),
                idempotency_key="generated-1")
            assert sent.status_code == 201, sent.content
            job = get_job.sync(id=sent.parsed.id, client=client)
            assert (job.id, job.queue, job.priority, job.state) == (
                sent.parsed.id, "generated", 3, "created")
            assert job.data == DATA
            # Any JSON is described, and what the server cannot store is still refused.
            refused = send_job.sync_detailed(
                client=client, body=models.JobSpec(queue="generated", data={"k": "a\0b"}))
            assert refused.status_code == 422, refused.content
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "ms8_generated"]:
            del sys.modules[name]


@pytest.mark.slow
def test_openapi_typescript_output_compiles_under_tsc_strict(
        api: ApiProcess, tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        print("npm is not installed: openapi-typescript cannot be checked")
        pytest.skip("npm is not installed: openapi-typescript cannot be checked")
    bin_dir = NODE_TOOLS / "node_modules" / ".bin"
    if not (bin_dir / "tsc").exists() or not (bin_dir / "openapi-typescript").exists():
        NODE_TOOLS.mkdir(parents=True, exist_ok=True)
        installed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NODE_TOOLS),
             *NODE_PACKAGES], capture_output=True, text=True, timeout=600)
        if installed.returncode != 0:
            reason = f"npm could not install {' '.join(NODE_PACKAGES)}: " + (
                installed.stderr.strip().splitlines() or ["?"])[-1]
            print(reason)
            pytest.skip(reason)
    spec = document(api, tmp_path)
    types = tmp_path / "api.ts"
    generated = subprocess.run([str(bin_dir / "openapi-typescript"), str(spec), "-o",
                                str(types)], capture_output=True, text=True, timeout=120)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    usage = tmp_path / "usage.ts"
    usage.write_text(
        'import type { components } from "./api";\n'
        'type JobSpec = components["schemas"]["JobSpec"];\n'
        'type Job = components["schemas"]["Job"];\n'
        'export const spec: JobSpec = { queue: "q", priority: 3,\n'
        '  data: { user_role: 42, sources: ["a", null], deep: [[{ ok: true }]] } };\n'
        'export const queueOf = (job: Job): string => job.queue;\n')
    compiled = subprocess.run(
        [str(bin_dir / "tsc"), "--strict", "--noEmit", "--target", "es2020",
         "--module", "es2020", "--moduleResolution", "bundler", str(types), str(usage)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
