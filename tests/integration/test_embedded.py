"""The embedded PostgreSQL server (devstack/embedded.py): auth, sharing, adoption, crashes."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator

import asyncpg
import pytest

from devstack.embedded import (
    PASSWORD_FILE,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    default_data_dir,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@pytest.fixture
def base_dir(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A directory to put data dirs in.

    As root the server runs as the ``ms8pg`` user, which must be able to traverse every
    directory above its data dir; pytest makes ``tmp_path``'s parents 0700 (and resets
    them each session), so as root we use a private directory under the system temp dir
    instead, made traversable (0711) by this fixture.
    """
    if os.geteuid() != 0:
        yield tmp_path
        return
    path = pathlib.Path(tempfile.mkdtemp(prefix="ms8-embedded-test-"))
    try:
        path.chmod(0o711)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg(base_dir: pathlib.Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(base_dir / "pg", settings=FAST)
    try:
        yield server
    finally:
        stop_everything(server)


def stop_everything(server: EmbeddedPostgres) -> None:
    server.stop()
    for pid in postmasters(server.data_dir):  # belt and braces: never leak a server
        os.kill(pid, signal.SIGKILL)


def postmasters(data_dir: pathlib.Path) -> list[int]:
    """Live postgres processes in data_dir whose parent is not one of them."""
    real = os.path.realpath(data_dir)
    procs: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/cwd") != real:
                continue
            stat_line = pathlib.Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = stat_line.rpartition(")")[2].split()
        comm = stat_line[stat_line.index("(") + 1 : stat_line.rindex(")")]
        if comm.startswith("postgres") and fields[0] not in ("Z", "X"):
            procs[int(entry.name)] = int(fields[1])
    return sorted(pid for pid, ppid in procs.items() if ppid not in procs)


def port_of(dsn: str) -> int:
    return int(dsn.rsplit(":", 1)[1].split("/")[0])


def password_of(dsn: str) -> str:
    return dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


async def _fetch(dsn: str, query: str, **connect_kwargs: object) -> object:
    conn = await asyncpg.connect(dsn, **connect_kwargs)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def fetch(dsn: str, query: str, **connect_kwargs: object) -> object:
    return asyncio.run(_fetch(dsn, query, **connect_kwargs))


def execute(dsn: str, *statements: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def cli(
    *args: str, data_root: pathlib.Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["MS8_DATA_DIR"] = str(data_root)
    return subprocess.run(
        [sys.executable, "-m", "devstack.embedded", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --------------------------------------------------------------------------- basics


def test_start_connect_select_1_with_settings(pg: EmbeddedPostgres) -> None:
    server = EmbeddedPostgres(pg.data_dir, settings={**FAST, "max_connections": "300"})
    dsn = server.start()
    assert dsn.startswith("postgresql://ms8:")
    assert dsn.endswith(f"@127.0.0.1:{port_of(dsn)}/postgres")
    assert fetch(dsn, "SELECT 1") == 1
    assert fetch(dsn, "SHOW max_connections") == "300"
    assert fetch(dsn, "SHOW fsync") == "off"
    assert server.is_running()
    assert server.dsn == dsn


def test_password_is_required(pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = pg.start()
    for name in ("PGPASSWORD", "PGPASSFILE"):
        monkeypatch.delenv(name, raising=False)
    no_password = dsn.replace(f":{password_of(dsn)}@", "@")
    nowhere = str(pg.data_dir.parent / "no-such-passfile")
    with pytest.raises(asyncpg.InvalidPasswordError):
        fetch(no_password, "SELECT 1", passfile=nowhere)
    with pytest.raises(asyncpg.InvalidPasswordError):
        fetch(dsn.replace(password_of(dsn), "wrong"), "SELECT 1", passfile=nowhere)
    assert fetch(dsn, "SELECT current_setting('password_encryption')") == "scram-sha-256"


def test_listens_on_loopback_only_without_unix_socket(pg: EmbeddedPostgres) -> None:
    dsn = pg.start()
    port = port_of(dsn)
    assert fetch(dsn, "SHOW listen_addresses") == "127.0.0.1"
    assert fetch(dsn, "SHOW unix_socket_directories") == ""
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                listening.append(address)
    assert listening == ["0100007F"]  # 127.0.0.1, nothing on IPv6 or 0.0.0.0
    socket_name = f".s.PGSQL.{port}"
    assert socket_name not in pathlib.Path("/proc/net/unix").read_text()
    for directory in (pg.data_dir, pathlib.Path("/tmp"), pathlib.Path("/run/postgresql")):
        assert not (directory / socket_name).exists()


def test_files_and_modes(pg: EmbeddedPostgres) -> None:
    dsn = pg.start()
    password_file = pg.data_dir / PASSWORD_FILE
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() == password_of(dsn)
    assert stat.S_IMODE(pg.data_dir.stat().st_mode) == 0o700
    if os.geteuid() == 0:
        import pwd

        assert pwd.getpwuid(pg.data_dir.stat().st_uid).pw_name == "ms8pg"
        assert pwd.getpwuid(password_file.stat().st_uid).pw_name == "ms8pg"
        assert pwd.getpwnam("ms8pg").pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert (pg.data_dir.parent / "pg.lock").exists()
    # the directory above the data dir was not chmodded
    assert stat.S_IMODE(pg.data_dir.parent.stat().st_mode) in (0o711, 0o700, 0o755)


def test_start_twice_returns_same_dsn_and_one_postmaster(pg: EmbeddedPostgres) -> None:
    dsn = pg.start()
    [postmaster] = postmasters(pg.data_dir)
    assert pg.start() == dsn
    assert EmbeddedPostgres(pg.data_dir).start() == dsn
    assert postmasters(pg.data_dir) == [postmaster]


def test_stop_is_idempotent_and_dsn_survives_it(pg: EmbeddedPostgres) -> None:
    pg.stop()  # never started: no error
    with pytest.raises(EmbeddedPostgresError, match="not initialised"):
        _ = pg.dsn
    dsn = pg.start()
    pg.stop()
    pg.stop()
    assert not pg.is_running()
    assert postmasters(pg.data_dir) == []
    assert pg.dsn == dsn  # recorded port and password


# --------------------------------------------------------------------------- sharing


def test_three_processes_starting_at_once_share_one_server(base_dir: pathlib.Path) -> None:
    server = EmbeddedPostgres(base_dir / "pg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["MS8_DATA_DIR"] = str(base_dir)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "devstack.embedded", "url"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        results = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], results
        dsns = {out.strip() for out, _ in results}
        assert len(dsns) == 1, results
        [dsn] = dsns
        assert fetch(dsn, "SELECT 1") == 1
        assert len(postmasters(server.data_dir)) == 1
        assert server.dsn == dsn
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
        stop_everything(server)


def test_server_of_a_sigkilled_starter_is_adopted(base_dir: pathlib.Path) -> None:
    data_dir = base_dir / "pg"
    script = textwrap.dedent(f"""
        import pathlib, sys, time
        from devstack.embedded import EmbeddedPostgres
        print(EmbeddedPostgres(pathlib.Path({str(data_dir)!r})).start(), flush=True)
        time.sleep(600)
    """)
    server = EmbeddedPostgres(data_dir)
    starter = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        dsn = starter.stdout.readline().strip()
        [postmaster] = postmasters(data_dir)
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
        assert server.is_running()  # it outlived its starter
        assert server.start() == dsn
        assert postmasters(data_dir) == [postmaster]
        assert fetch(dsn, "SELECT 1") == 1
    finally:
        if starter.poll() is None:
            starter.kill()
        starter.communicate()
        stop_everything(server)


# --------------------------------------------------------------------------- crashes, restarts


def test_kill_then_start_recovers_committed_data(pg: EmbeddedPostgres) -> None:
    # default (durable) settings: a committed row must survive a postmaster crash
    server = EmbeddedPostgres(pg.data_dir)
    dsn = server.start()
    execute(dsn, "CREATE TABLE crash (x int)", "INSERT INTO crash VALUES (42)")
    [before] = postmasters(pg.data_dir)
    server.kill()
    assert not server.is_running()
    assert server.start() == dsn
    [after] = postmasters(pg.data_dir)
    assert after != before
    assert fetch(dsn, "SELECT x FROM crash") == 42


def test_restart_keeps_data_and_port(pg: EmbeddedPostgres) -> None:
    dsn = pg.start()
    execute(dsn, "CREATE TABLE kept (x int)", "INSERT INTO kept VALUES (7)")
    [before] = postmasters(pg.data_dir)
    assert pg.restart() == dsn
    assert postmasters(pg.data_dir) != [before]
    assert fetch(dsn, "SELECT x FROM kept") == 7


def test_recorded_port_taken_by_something_else_picks_a_new_one(pg: EmbeddedPostgres) -> None:
    dsn = pg.start()
    port = port_of(dsn)
    pg.stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        new_dsn = pg.start()
        assert port_of(new_dsn) != port
        assert fetch(new_dsn, "SELECT 1") == 1
    assert pg.dsn == new_dsn


# --------------------------------------------------------------------------- CLI, defaults, errors


def test_cli_start_hides_password_and_status_reports(base_dir: pathlib.Path) -> None:
    server = EmbeddedPostgres(base_dir / "pg")
    try:
        stopped = cli("status", data_root=base_dir)
        assert stopped.returncode == 3, stopped.stderr
        started = cli("start", data_root=base_dir)
        assert started.returncode == 0, started.stderr
        password = (server.data_dir / PASSWORD_FILE).read_text().strip()
        assert started.stdout.strip() == server.dsn.replace(password, "***")
        assert password not in started.stdout + started.stderr
        status = cli("status", data_root=base_dir)
        assert status.returncode == 0 and "running" in status.stdout
        assert password not in status.stdout + status.stderr
        assert cli("url", data_root=base_dir).stdout.strip() == server.dsn
        assert cli("stop", data_root=base_dir).returncode == 0
        assert not server.is_running()
    finally:
        stop_everything(server)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("MS8_DATA_DIR", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d" / "pg"
    monkeypatch.delenv("MS8_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert default_data_dir() == tmp_path / ".data" / "pg"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
@pytest.mark.skipif(os.geteuid() != 0, reason="relocation only happens when running as root")
def test_a_cluster_behind_a_private_directory_lives_where_the_server_user_can_reach(
    tmp_path: pathlib.Path,
) -> None:
    # pytest's tmp_path sits under 0700 directories that ms8pg cannot enter
    server = EmbeddedPostgres(tmp_path / "pg", settings=FAST)
    try:
        assert str(server.data_dir).startswith("/var/tmp/ms8-jobs/")
        assert (tmp_path / "pg.location").read_text().strip() == str(server.data_dir)
        assert fetch(server.start(), "SELECT 1") == 1
        assert EmbeddedPostgres(tmp_path / "pg").data_dir == server.data_dir
    finally:
        stop_everything(server)
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)
    assert not (tmp_path / "pg").exists()


def test_invalid_setting_name_is_rejected(base_dir: pathlib.Path) -> None:
    with pytest.raises(ValueError):
        EmbeddedPostgres(base_dir / "pg", settings={"fsync; rm -rf /": "off"})
