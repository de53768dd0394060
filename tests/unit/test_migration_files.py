"""Migration files: the compatibility pragma, checksums, and how a schema compares."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.migrations import Applied, SchemaError, compare, discover


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def test_every_project_migration_says_what_the_previous_code_can_do() -> None:
    migrations = discover()
    assert migrations and all(m.compatibility in ("previous", "breaking") for m in migrations)
    assert len({m.checksum for m in migrations}) == len(migrations)


def test_a_migration_without_the_pragma_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "0001_first.sql", "CREATE TABLE t (x int);\n")
    with pytest.raises(SchemaError, match="must start with a line '-- compatible: previous'"):
        discover(tmp_path)


def test_line_endings_do_not_change_the_checksum(tmp_path: Path) -> None:
    unix, windows = tmp_path / "unix", tmp_path / "windows"
    unix.mkdir()
    windows.mkdir()
    write(unix, "0001_first.sql", "-- breaking\nCREATE TABLE t (x int);\n")
    (windows / "0001_first.sql").write_bytes(b"-- breaking\r\nCREATE TABLE t (x int);\r\n")
    assert discover(unix)[0].checksum == discover(windows)[0].checksum


def known(tmp_path: Path, *pragmas: str) -> list:
    for number, pragma in enumerate(pragmas, start=1):
        write(tmp_path, f"{number:04d}_m{number}.sql", f"{pragma}\nSELECT {number};\n")
    return discover(tmp_path)


def applied(migrations: list, *newer: str | None) -> list[Applied]:
    rows = [Applied(m.version, m.name, m.checksum, m.compatibility) for m in migrations]
    return rows + [Applied(len(rows) + i, f"new{i}", "x", c) for i, c in enumerate(newer, 1)]


@pytest.mark.parametrize(("newer", "state"), [
    ((), "current"),
    (("previous",), "compatible"),
    (("previous", "previous"), "compatible"),
    (("previous", "breaking"), "incompatible"),
    ((None,), "incompatible"),  # recorded without a compatibility: assume the worst
])
def test_where_a_schema_stands(tmp_path: Path, newer: tuple, state: str) -> None:
    migrations = known(tmp_path, "-- breaking", "-- compatible: previous")
    status = compare(applied(migrations, *newer), migrations, "s")
    assert status.state == state
    assert status.runnable == (state in ("current", "compatible"))
    assert status.expected == 2 and status.version == 2 + len(newer)


def test_behind_empty_and_edited(tmp_path: Path) -> None:
    migrations = known(tmp_path, "-- breaking", "-- compatible: previous")
    assert compare(applied(migrations[:1]), migrations, "s").state == "behind"
    assert compare([], migrations, "s").state == "empty"
    rows = applied(migrations)
    rows[1] = Applied(2, "m2", "0" * 64, "previous")
    status = compare(rows, migrations, "s")
    assert status.state == "edited" and "0002_m2 differs" in status.detail
    rows[1] = Applied(2, "other", None, None)  # same number, another migration
    assert compare(rows, migrations, "s").state == "edited"
    rows[1] = Applied(2, "m2", None, None)  # recorded before checksums: trusted
    assert compare(rows, migrations, "s").state == "current"


def test_gaps_in_the_numbers(tmp_path: Path) -> None:
    """Numbers may be reserved ahead: a gap is allowed, and a migration that lands later
    with a lower number is simply missing from a schema that has the higher one."""
    for number in (1, 2, 4):
        write(tmp_path, f"{number:04d}_m{number}.sql", f"-- breaking\nSELECT {number};\n")
    migrations = discover(tmp_path)
    rows = applied(migrations)
    assert compare(rows, migrations, "s").state == "current"
    assert compare([r for r in rows if r.version != 2], migrations, "s").state == "behind"
    newer = [*rows, Applied(3, "other", "x", "previous")]
    assert compare(newer, migrations, "s").state == "compatible"
    write(tmp_path, "0004_again.sql", "-- breaking\nSELECT 4;\n")
    with pytest.raises(SchemaError, match="unique"):
        discover(tmp_path)
