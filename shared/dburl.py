"""Database URLs as libpq reads them, turned into what asyncpg needs.

Every form PostgreSQL's own tools accept is accepted here:

- ``postgresql://`` or ``postgres://``, user, percent-encoded password, several
  ``host:port`` pairs, IPv6 hosts in brackets (``[::1]:5432``);
- a Unix socket: ``postgresql://app@/ms8?host=/var/run/postgresql``, or the directory
  percent-encoded as the host (``postgresql://%2Fvar%2Frun%2Fpostgresql/ms8``);
- query parameters overriding the URL's parts (``host``, ``port``, ``dbname``, ``user``,
  ``password``), TLS (``sslmode`` up to ``verify-full``, ``sslrootcert`` including
  ``system``, ``sslcert``, ``sslkey``, ``sslcrl``, ...), ``connect_timeout``, and server
  settings (``application_name``, ``options``, any other name);
- libpq's keyword/value strings (``host=/tmp dbname=ms8 user=app``).

The result is one canonical DSN that asyncpg parses the way libpq would (asyncpg prefers
the URL's host to a ``host`` parameter, libpq the other way round), plus what a DSN
cannot say (a TLS context on the system's roots, the connect timeout).

Client knobs asyncpg does not have (TCP keepalives, ``sslcompression`` ...) are
ignored: they change nothing that matters to correctness. Settings that demand a
guarantee asyncpg cannot give (``channel_binding=require``, ``require_auth``,
``hostaddr`` ...) are refused rather than silently weakened. Every error is one line
naming the variable and the part at fault, never the password.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, unquote

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
FILE_PARAMS = ("sslcert", "sslkey", "sslrootcert", "sslcrl", "passfile")
# Other libpq parameters (sslmode, sslcert, sslkey, sslrootcert, sslcrl, sslpassword,
# sslnegotiation, ssl_min/max_protocol_version, target_session_attrs, krbsrvname, gsslib,
# passfile, service) asyncpg reads from the DSN itself: they pass through.
# libpq client knobs with no asyncpg counterpart that weaken nothing when ignored.
IGNORED = frozenset({
    "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", "fallback_application_name", "sslcompression", "sslsni",
    "load_balance_hosts", "gssdelegation",
})
# libpq parameters that ask for something asyncpg cannot do: value -> the allowed ones.
LIMITED = {
    "channel_binding": ("disable", "prefer"),
    "gssencmode": ("disable", "prefer"),
    "client_encoding": ("utf8", "utf-8", "unicode"),
    "sslcertmode": ("disable", "allow"),
}
REFUSED = {
    "hostaddr": "give the address as the host instead",
    "require_auth": "asyncpg negotiates the method the server asks for; remove it",
    "requirepeer": "asyncpg cannot check the peer of a Unix socket; remove it",
    "replication": "a replication connection cannot run queries; remove it",
}
_KEYWORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")
_ENCODING_HINT = ("percent-encode '@', ':', '/', '?', '#' and '%' in the user name and "
                  "password")


class DatabaseUrlError(ValueError):
    """A database URL that libpq would not accept either; the message names the part."""


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL. ``password`` never appears in ``repr`` or ``str``."""

    hosts: tuple[str, ...] = ()
    ports: tuple[int | None, ...] = ()
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    connect_timeout: float | None = None

    def __str__(self) -> str:
        """Where it points, safe for logs: ``app@db.example.com:5432/ms8``."""
        hosts = ",".join(
            _host_text(h) + (f":{p}" if p else "") for h, p in zip(
                self.hosts, self.ports, strict=True)) or "(default host)"
        return f"{self.user + '@' if self.user else ''}{hosts}/{self.database or ''}"

    @property
    def system_roots(self) -> bool:
        """``sslrootcert=system``: verify the server against the system's CA store."""
        return self.params.get("sslrootcert") == "system"

    @property
    def dsn(self) -> str:
        """The canonical URL asyncpg parses as libpq would (password included)."""
        auth = ""
        if self.user is not None:
            auth = quote(self.user, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        hosts = ",".join(
            (f"[{h}]" if ":" in h and not h.startswith("/") else quote(h, safe=""))
            + (f":{p}" if p else "") for h, p in zip(self.hosts, self.ports, strict=True))
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                         for k, v in self.params.items())
        database = quote(self.database, safe="") if self.database is not None else ""
        return f"postgresql://{auth}{hosts}/{database}" + (f"?{query}" if query else "")

    def with_database(self, name: str) -> DatabaseUrl:
        return replace(self, database=name)

    def connect_kwargs(self) -> dict[str, Any]:
        """Arguments for ``asyncpg.connect`` and ``asyncpg.create_pool``."""
        kwargs: dict[str, Any] = {"dsn": self.dsn}
        if self.system_roots:
            params = {k: v for k, v in self.params.items()
                      if k not in ("sslmode", "sslrootcert")}
            kwargs["dsn"] = replace(self, params=MappingProxyType(params)).dsn
            kwargs["ssl"] = system_tls_context()
        if self.connect_timeout is not None:
            kwargs["timeout"] = self.connect_timeout
        return kwargs


def system_tls_context() -> ssl.SSLContext:
    """verify-full against the system's trusted roots (libpq's ``sslrootcert=system``)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def parse(url: str, name: str = "DATABASE_URL") -> DatabaseUrl:
    """Parse a libpq URL or keyword/value string; ``name`` is the variable it came from."""
    text = url.strip()
    if not text:
        raise DatabaseUrlError(f"{name} is empty")
    scheme, sep, _rest = text.partition("://")
    if sep:
        if scheme.lower() not in ("postgresql", "postgres"):
            raise DatabaseUrlError(
                f"{name} must start with postgresql:// or postgres:// (got {scheme!r}://)")
        parts = _split_uri(text[len(scheme) + 3:], name)
    elif _KEYWORD.match(text):
        parts = _split_keywords(text, name)
    else:
        raise DatabaseUrlError(
            f"{name} must look like postgresql://user:password@host:5432/database")
    return _build(parts, name)


def connect_kwargs(url: str, name: str = "DATABASE_URL") -> dict[str, Any]:
    """``parse(url).connect_kwargs()``: how to hand any accepted URL to asyncpg."""
    return parse(url, name).connect_kwargs()


@dataclass
class _Parts:
    hostspec: str = ""
    user: str | None = None
    password: str | None = None
    database: str | None = None
    params: dict[str, str] = field(default_factory=dict)


def _split_uri(rest: str, name: str) -> _Parts:
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise DatabaseUrlError(f"{name} contains '#'; {_ENCODING_HINT}")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    parts = _Parts()
    userinfo, at, parts.hostspec = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        parts.user = _decode(user, name, "the user name")
        parts.password = _decode(password, name, "the password") if colon else None
    if slash:
        if "/" in path:
            raise DatabaseUrlError(
                f"{name}: the database name contains '/' (its path has more than one "
                f"part); {_ENCODING_HINT}")
        parts.database = _decode(path, name, "the database name") or None
    for item in query.split("&") if query else ():
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = _decode(key, name, "a query parameter")
        if not eq:  # not echoed: it may be a piece of an unencoded password
            raise DatabaseUrlError(
                f"{name}: a part of the query string has no '=value'; {_ENCODING_HINT}")
        if key in parts.params:
            raise DatabaseUrlError(f"{name} gives {key} twice")
        parts.params[key] = _decode(value, name, f"the value of {key}")
    return parts


def _split_keywords(text: str, name: str) -> _Parts:
    """``key=value key='quoted \\' value'`` as libpq reads it."""
    params: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _KEYWORD.match(text, position)
        if match is None:
            if text[position:].strip():
                where = f"after {list(params)[-1]}" if params else "at the start"
                raise DatabaseUrlError(
                    f"{name}: expected keyword=value {where} (quote values that contain "
                    "spaces: password='a b')")
            break
        key, position = match[1], match.end()
        value, position = _keyword_value(text, position, name, key)
        if key in params:
            raise DatabaseUrlError(f"{name} gives {key} twice")
        params[key] = value
    return _Parts(params=params)


def _keyword_value(text: str, position: int, name: str, key: str) -> tuple[str, int]:
    chars: list[str] = []
    quoted = position < len(text) and text[position] == "'"
    if quoted:
        position += 1
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            chars.append(text[position + 1])
            position += 2
            continue
        if (quoted and char == "'") or (not quoted and char.isspace()):
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    if quoted:
        raise DatabaseUrlError(f"{name}: the value of {key} lacks its closing quote")
    return "".join(chars), position


def _decode(text: str, name: str, what: str) -> str:
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise DatabaseUrlError(f"{name}: {what} has a '%' not followed by two hex digits; "
                               f"{_ENCODING_HINT}")
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise DatabaseUrlError(f"{name}: {what} is not percent-encoded UTF-8") from None


def _build(parts: _Parts, name: str) -> DatabaseUrl:
    params = dict(parts.params)
    hostspec = params.pop("host", None)
    hosts, ports = _hosts(hostspec if hostspec is not None else parts.hostspec, name,
                          encoded=hostspec is None)
    if "port" in params:
        ports = _ports(params.pop("port"), len(hosts), name)
    user = params.pop("user", parts.user)
    password = params.pop("password", parts.password)
    dbname, alias = params.pop("dbname", None), params.pop("database", None)
    database = dbname or alias or parts.database
    timeout = _timeout(params.pop("connect_timeout", None), name)
    kept: dict[str, str] = {}
    for key, value in params.items():
        if key in IGNORED:
            continue
        if key in REFUSED:
            raise DatabaseUrlError(f"{name}: {key} is not supported ({REFUSED[key]})")
        if key in LIMITED:
            if value.lower() not in LIMITED[key]:
                raise DatabaseUrlError(
                    f"{name}: {key}={value} is not supported (asyncpg allows "
                    f"{' or '.join(LIMITED[key])}; remove it)")
            continue
        kept[key] = value
    _check_tls(kept, name)
    return DatabaseUrl(hosts=hosts, ports=ports, user=user or None, password=password,
                       database=database, params=MappingProxyType(kept),
                       connect_timeout=timeout)


def _hosts(spec: str, name: str, *, encoded: bool
           ) -> tuple[tuple[str, ...], tuple[int | None, ...]]:
    if not spec:
        return (), ()
    hosts: list[str] = []
    ports: list[int | None] = []
    for item in spec.split(","):
        host, port = _host_port(item.strip(), name)
        if encoded:
            host = _decode(host, name, "the host")
        if not host:
            raise DatabaseUrlError(f"{name}: a host in the host list is empty")
        hosts.append(host)
        ports.append(_port(port, name) if port else None)
    return tuple(hosts), tuple(ports)


def _host_port(item: str, name: str) -> tuple[str, str]:
    # Host texts are not echoed in errors: a bad one may hold a piece of the password.
    if item.startswith("/"):
        return item, ""  # a socket directory from host=: its ':' belong to the path
    if item.startswith("["):
        host, bracket, port = item[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise DatabaseUrlError(
                f"{name}: an IPv6 host must look like [::1] or [::1]:5432")
        return host, port[1:]
    if item.count(":") > 1:
        raise DatabaseUrlError(
            f"{name}: put an IPv6 host in brackets, e.g. [::1]:5432; if the password "
            f"contains special characters, {_ENCODING_HINT}")
    host, _, port = item.partition(":")
    return host, port


def _port(text: str, name: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise DatabaseUrlError(  # the text is not echoed: it may be part of a password
            f"{name}: the port must be a number from 1 to 65535; if the password "
            f"contains special characters, {_ENCODING_HINT}")
    return int(text)


def _ports(text: str, hosts: int, name: str) -> tuple[int | None, ...]:
    ports = tuple(_port(p.strip(), name) for p in text.split(","))
    if len(ports) == 1:
        return ports * max(hosts, 1) if hosts else ()
    if len(ports) != hosts:
        raise DatabaseUrlError(
            f"{name}: {len(ports)} ports given for {hosts} host(s)")
    return ports


def _timeout(text: str | None, name: str) -> float | None:
    if text is None or text.strip() == "":
        return None
    if not text.strip().isdigit():
        raise DatabaseUrlError(
            f"{name}: connect_timeout must be whole seconds, got {text!r}")
    seconds = int(text)
    # libpq: 0 waits forever (we keep MS8_CONNECT_TIMEOUT); below 2 means 2.
    return None if seconds == 0 else float(max(seconds, 2))


def _check_tls(params: dict[str, str], name: str) -> None:
    mode = params.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise DatabaseUrlError(
            f"{name}: sslmode must be one of {', '.join(SSL_MODES)}, got {mode!r}")
    if params.get("sslrootcert") == "system":
        if mode is None:
            params["sslmode"] = "verify-full"
        elif mode != "verify-full":
            raise DatabaseUrlError(
                f"{name}: sslrootcert=system needs sslmode=verify-full, got {mode!r}")
    for key in FILE_PARAMS:
        path = params.get(key)
        if path is None or (key == "sslrootcert" and path == "system"):
            continue
        if not os.path.isfile(os.path.expanduser(path)):
            raise DatabaseUrlError(f"{name}: {key} {path!r} is not a readable file")
    for key in ("ssl_min_protocol_version", "ssl_max_protocol_version"):
        if key in params and params[key] not in TLS_VERSIONS:
            raise DatabaseUrlError(
                f"{name}: {key} must be one of {', '.join(TLS_VERSIONS)}, got {params[key]!r}")
    attrs = params.get("target_session_attrs")
    if attrs is not None and attrs not in SESSION_ATTRS:
        raise DatabaseUrlError(
            f"{name}: target_session_attrs must be one of {', '.join(SESSION_ATTRS)}, "
            f"got {attrs!r}")


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("/") else host
