"""docs/operations.md stays true to the code: every setting the code reads is in its
tables with a default (and nothing else is), every metric exported is explained, and the
runbook's links into it land on a section."""

from __future__ import annotations

import re
from pathlib import Path

from tests.metric_names import documented_names
from tests.unit.test_monitoring import github_anchor

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
# The packages whose processes read settings (the benchmark has its own).
PACKAGES = ("shared", "api", "worker", "scheduler", "analytics", "stub", "devstack")
_SETTING = re.compile(r"""["']((?:MS8|DATABASE|RAILWAY)_[A-Z0-9_]+|PORT)["']""")
_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-+", line):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def read_by_the_code() -> set[str]:
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(_SETTING.findall(path.read_text()))
    return names


def test_every_setting_the_code_reads_is_documented_with_its_default() -> None:
    documented: set[str] = set()
    for row in table_rows(section("Settings")):
        if row[0] == "variable":
            continue
        names = _NAME.findall(row[0])
        assert names and row[1], f"a settings row without a name or a default: {row}"
        documented.update(names)
    code = read_by_the_code()
    assert code - documented == set(), "read by the code, missing from docs/operations.md"
    assert documented - code == set(), "in docs/operations.md, read by no code"


def test_every_metric_is_explained() -> None:
    documented = {name for row in table_rows(section("Metrics")) if row[0] != "metric"
                  for name in re.findall(r"`(ms8_[a-z0-9_]+)", row[0])}
    exported = {name for name in documented_names() if name.startswith("ms8_")}
    exported.discard("ms8_build_info")  # explained in the text under the tables
    assert exported - documented == set(), "exported but not explained"
    assert documented - exported == set(), "explained but not exported"


def test_links_into_the_guide_land_on_a_section() -> None:
    anchors = {github_anchor(line[3:].strip()) for line in DOC.read_text().splitlines()
               if line.startswith("## ")}
    for page in ("runbook.md", "operations.md", "guides/job-queue-setup.md"):
        text = (ROOT / "docs" / page).read_text()
        for anchor in re.findall(r"operations\.md#([a-z0-9-]+)", text) + (
                re.findall(r"\]\(#([a-z0-9-]+)\)", text) if page == "operations.md" else []):
            assert anchor in anchors, f"{page} links to a missing section: #{anchor}"


def test_relative_links_between_the_docs_resolve() -> None:
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} -> {target}"
