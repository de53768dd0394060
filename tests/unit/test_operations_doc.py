"""docs/operations.md stays true to the code: every setting the code reads is in its
tables with a default (and nothing else is), the defaults written as plain values are the
code's, every metric exported is explained, and the runbook's links into it land on a
section."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
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


# The functions that read a setting, and where their default is: the argument after the
# name (per_source: after the source names too).
_READERS = {"env_str": 1, "env_int": 1, "env_float": 1, "env_bool": 1, "env_choice": 1,
            "get": 1, "per_source": 2}
_SIZES = {"KiB": 1024, "MiB": 1024 * 1024}
_WORDS = {"off": 0, "none": None}


def _constant(node: ast.expr, names: dict[str, object]) -> object:
    """The value of a literal, a module constant, or arithmetic on them; else ValueError."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _constant(node.left, names), _constant(node.right, names)
        if isinstance(left, int | float) and isinstance(right, int | float):
            return left + right if isinstance(node.op, ast.Add) else left * right
    raise ValueError(ast.unparse(node))


def code_defaults() -> Iterator[tuple[str, object, str]]:
    """(variable, default, where) of every read whose default is a constant; defaults
    that follow from another setting are written as words in the guide, and left out."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            names: dict[str, object] = {}
            for statement in tree.body:
                if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                        and isinstance(statement.targets[0], ast.Name):
                    try:
                        names[statement.targets[0].id] = _constant(statement.value, names)
                    except ValueError:
                        pass
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                reader = func.attr if isinstance(func, ast.Attribute) else getattr(
                    func, "id", "")
                if reader not in _READERS:
                    continue
                for i, arg in enumerate(node.args):
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                            and _SETTING.fullmatch(f'"{arg.value}"'):
                        default = node.args[i + _READERS[reader]:][:1]
                        try:
                            value = _constant(default[0], names) if default else None
                        except ValueError:
                            continue
                        if value not in (None, ""):
                            yield arg.value, value, f"{path.relative_to(ROOT)}:{node.lineno}"


def _plain(cell: str) -> object:
    """A default as the guide writes it (`true`, 10, 4 MiB, off), or None when it is
    words (derived from another setting, or set by the platform)."""
    match = re.fullmatch(r"`?([\w.-]+)`?(?: (KiB|MiB))?(?:,? (?:or|\().*)?", cell.strip())
    if match is None:
        return None
    text, unit = match.groups()
    if text in _WORDS:
        return _WORDS[text]
    try:
        number = float(text)
    except ValueError:
        return text
    return number * _SIZES[unit] if unit else number


def doc_defaults() -> dict[str, object]:
    defaults: dict[str, object] = {}
    for row in table_rows(section("Settings")):
        names = _NAME.findall(row[0])
        if row[0] == "variable" or not names:
            continue
        cells = row[1].split(", ") if len(names) > 1 else [row[1]]
        assert len(cells) == len(names), f"one default per variable: {row}"
        defaults.update(zip(names, map(_plain, cells), strict=True))
    return defaults


def _same(doc: object, code: object) -> bool:
    if isinstance(code, bool):
        return doc == str(code).lower()
    if isinstance(code, int | float):
        return isinstance(doc, int | float) and float(doc) == float(code)
    if isinstance(code, str) and isinstance(doc, float):
        return code.replace(".", "", 1).isdigit() and float(code) == doc
    return doc == code


def test_the_defaults_written_as_values_are_the_code_s() -> None:
    documented = doc_defaults()
    read = list(code_defaults())
    assert len(read) > 40, "the code's defaults were not found"
    wrong = [f"{name}: the code has {value!r} ({where}), the guide {documented[name]!r}"
             for name, value, where in read
             if documented.get(name) is not None and not _same(documented[name], value)]
    assert wrong == []
    # A default the code has as a plain value is written as one, so it is checked.
    assert sorted(name for name, _, _ in read if documented.get(name) is None) == []


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
