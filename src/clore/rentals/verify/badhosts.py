"""The bad-host list: servers (and owners) whose machines failed verification, kept locally
so that choosing a server skips them next time.

One JSON file, ``bad-hosts.json`` in the data directory (``CLORE_DATA_DIR``), mode 0600,
replaced atomically (``clore._files.write_atomic``) under a lock file beside it::

    {"v": 1,
     "servers": [{"id": 25756, "owner": 9177, "reason": "gpu_count fail: ...",
                  "added_at": 1700000000.0, "order_id": 12, "checks": ["gpu_count"]}],
     "owners": [{"id": 9177, "reason": "...", "added_at": 1700000000.0}]}

A server is bad when it is listed, or when its owner is: listed explicitly, or with
``OWNER_STRIKES`` (2) or more of their servers listed — one bad machine may be an
accident, two are a habit. Adding a listed server again replaces its entry (the newest
reason wins). ``forget`` removes entries; forgetting an owner removes the owner's entry and
every server of theirs.

``BadHosts(path)`` is the file; ``BadHosts.load()`` returns a ``BadHostList`` to ask many
questions of at once (``is_bad`` on each marketplace server). The module functions
(``list_bad_hosts``, ``add_bad_host``, ``forget_bad_host``, ``is_bad``) use the default file.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import msgspec

from clore._errors import ConfigError
from clore._files import locked, write_atomic
from clore._paths import data_dir
from clore._wire import Order, Server

__all__ = [
    "BAD_HOSTS_FILE",
    "OWNER_STRIKES",
    "BadHost",
    "BadHostList",
    "BadHosts",
    "BadHostsFileError",
    "BadReason",
    "add_bad_host",
    "bad_hosts_path",
    "forget_bad_host",
    "is_bad",
    "list_bad_hosts",
]

BAD_HOSTS_FILE: Final = "bad-hosts.json"
#: An owner with this many servers on the list is bad as a whole.
OWNER_STRIKES: Final = 2
_VERSION: Final = 1
_MAX_REASON: Final = 500


class BadHostsFileError(ConfigError):
    """The bad-host file cannot be read (not JSON, or not this schema)."""


class BadHost(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    """One entry: a server (with its ``owner`` when known) or an owner, why and when
    (``added_at``, unix time), the order that showed it and the checks that failed."""

    id: int
    reason: str
    added_at: float
    owner: int | None = None
    order_id: int | None = None
    checks: list[str] = msgspec.field(default_factory=list)


class _Document(msgspec.Struct, kw_only=True):
    v: int = _VERSION
    servers: list[BadHost] = msgspec.field(default_factory=list)
    owners: list[BadHost] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class BadReason:
    """Why a server is bad: ``kind`` ``server`` (itself listed), ``owner`` (its owner
    listed) or ``owner_strikes`` (``OWNER_STRIKES`` of the owner's servers listed)."""

    kind: Literal["server", "owner", "owner_strikes"]
    entry: BadHost
    reason: str


def bad_hosts_path() -> Path:
    """The default file: ``bad-hosts.json`` in the data directory."""
    return data_dir() / BAD_HOSTS_FILE


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


def _server_and_owner(server: Server | Order | int, owner: int | None) -> tuple[int, int | None]:
    if isinstance(server, Server):
        return server.id, owner if owner is not None else server.owner
    if isinstance(server, Order):
        return server.si, owner if owner is not None else server.owner
    if isinstance(server, bool) or not isinstance(server, int):
        raise TypeError(f"a server is a Server, an Order or an id, got {server!r}")
    return server, owner


@dataclass(frozen=True)
class BadHostList:
    """The list as loaded: entries, and the answers ``is_bad`` gives from them."""

    servers: tuple[BadHost, ...] = ()
    owners: tuple[BadHost, ...] = ()

    def entries(self) -> list[tuple[Literal["server", "owner"], BadHost]]:
        """Every entry, servers then owners, oldest first within each."""
        servers = sorted(self.servers, key=lambda e: e.added_at)
        owners = sorted(self.owners, key=lambda e: e.added_at)
        return [("server", e) for e in servers] + [("owner", e) for e in owners]

    def is_bad(self, server: Server | Order | int, owner: int | None = None) -> BadReason | None:
        """Why ``server`` (a listing, an order or an id, with ``owner`` when only an id)
        is to be skipped, or None when it is not on the list."""
        server_id, owner_id = _server_and_owner(server, owner)
        for entry in self.servers:
            if entry.id == server_id:
                return BadReason("server", entry, entry.reason)
        if owner_id is None:
            return None
        for entry in self.owners:
            if entry.id == owner_id:
                return BadReason("owner", entry, f"owner {owner_id}: {entry.reason}")
        strikes = [e for e in self.servers if e.owner == owner_id]
        if len(strikes) >= OWNER_STRIKES:
            newest = max(strikes, key=lambda e: e.added_at)
            return BadReason(
                "owner_strikes",
                newest,
                f"owner {owner_id} has {len(strikes)} servers on the bad-host list",
            )
        return None


class BadHosts:
    """The bad-host file at ``path`` (default: ``bad_hosts_path()``)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else bad_hosts_path()

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _read(self) -> _Document:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return _Document()
        except OSError as exc:
            raise BadHostsFileError(
                f"cannot read the bad-host list {self.path}: {exc.strerror}"
            ) from None
        try:
            document = msgspec.json.decode(data, type=_Document)
        except msgspec.DecodeError as exc:
            raise BadHostsFileError(
                f"the bad-host list {self.path} is damaged ({exc}); fix or remove it"
            ) from None
        if document.v != _VERSION:
            raise BadHostsFileError(
                f"the bad-host list {self.path} has version {document.v}; this clore reads "
                f"version {_VERSION}"
            )
        return document

    def _write(self, document: _Document) -> None:
        blob = msgspec.json.format(msgspec.json.encode(document), indent=2)
        write_atomic(self.path, blob + b"\n", mode=0o600)

    def load(self) -> BadHostList:
        """The list as it is now (empty when the file does not exist)."""
        document = self._read()
        return BadHostList(tuple(document.servers), tuple(document.owners))

    def add_server(
        self,
        server_id: int,
        *,
        reason: str,
        owner: int | None = None,
        order_id: int | None = None,
        checks: Iterable[str] = (),
        now: float | None = None,
    ) -> BadHost:
        """Put ``server_id`` on the list (replacing its entry); returns the entry."""
        entry = BadHost(
            id=server_id,
            reason=_one_line(reason),
            added_at=time.time() if now is None else now,
            owner=owner,
            order_id=order_id,
            checks=list(checks),
        )
        with locked(self.lock_path):
            document = self._read()
            document.servers = [e for e in document.servers if e.id != server_id] + [entry]
            self._write(document)
        return entry

    def add_owner(self, owner: int, *, reason: str, now: float | None = None) -> BadHost:
        """Put every server of ``owner`` on the list; returns the entry."""
        entry = BadHost(
            id=owner, reason=_one_line(reason), added_at=time.time() if now is None else now
        )
        with locked(self.lock_path):
            document = self._read()
            document.owners = [e for e in document.owners if e.id != owner] + [entry]
            self._write(document)
        return entry

    def forget(
        self, *, server_id: int | None = None, owner: int | None = None, everything: bool = False
    ) -> list[BadHost]:
        """Remove a server's entry, an owner's (with each of their servers), or all;
        returns what was removed (empty when nothing matched)."""
        if server_id is None and owner is None and not everything:
            raise ValueError("forget: name a server, an owner, or everything")
        with locked(self.lock_path):
            document = self._read()
            if everything:
                removed = document.servers + document.owners
                document.servers, document.owners = [], []
            else:
                gone_servers = [
                    e
                    for e in document.servers
                    if e.id == server_id or (owner is not None and e.owner == owner)
                ]
                gone_owners = [e for e in document.owners if owner is not None and e.id == owner]
                removed = gone_servers + gone_owners
                document.servers = [e for e in document.servers if e not in gone_servers]
                document.owners = [e for e in document.owners if e not in gone_owners]
            if removed:
                self._write(document)
        return removed

    def is_bad(self, server: Server | Order | int, owner: int | None = None) -> BadReason | None:
        """``load().is_bad(server, owner)``: one question, one read of the file."""
        return self.load().is_bad(server, owner)


def list_bad_hosts(path: Path | str | None = None) -> BadHostList:
    """The bad-host list (the default file unless ``path``)."""
    return BadHosts(path).load()


def add_bad_host(
    server_id: int,
    *,
    reason: str,
    owner: int | None = None,
    order_id: int | None = None,
    checks: Iterable[str] = (),
    now: float | None = None,
    path: Path | str | None = None,
) -> BadHost:
    """Put a server on the bad-host list (the default file unless ``path``)."""
    return BadHosts(path).add_server(
        server_id, reason=reason, owner=owner, order_id=order_id, checks=checks, now=now
    )


def forget_bad_host(
    *,
    server_id: int | None = None,
    owner: int | None = None,
    everything: bool = False,
    path: Path | str | None = None,
) -> list[BadHost]:
    """Remove entries from the bad-host list (see ``BadHosts.forget``)."""
    return BadHosts(path).forget(server_id=server_id, owner=owner, everything=everything)


def is_bad(
    server: Server | Order | int, owner: int | None = None, *, path: Path | str | None = None
) -> BadReason | None:
    """Why ``server`` is on the bad-host list, or None (the default file unless ``path``)."""
    return BadHosts(path).is_bad(server, owner)
