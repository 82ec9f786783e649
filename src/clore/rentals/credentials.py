"""What the renter logs in to each of their orders with, remembered on this machine, and
the known-hosts file of each order.

``create_order`` takes a public key or a password and the API never gives either back, so
whoever rented an order is the only one who knows how to log in to it. ``RentalLogins``
keeps that per order — the public key file sent, its private half when it lies beside it,
the password, the Jupyter token — in ``rental-logins.json`` in the data directory (mode
0600, replaced atomically under a lock), so ``clore verify``, ``clore ssh``,
``ssh-config`` and ``open`` can log in later. An entry names its order by id *and*
creation time (``ct``): the same id on another API (a sandbox) is another order.
Passwords and tokens are never in a repr, a log or a message; ``jupyter_url`` puts the
token where Jupyter takes it (``?token=``), for the one who asked for that URL.

``known_hosts_path`` is the order's own known-hosts file (``known_hosts/`` in the data
directory): a rental's host key is new with each order, and a reused ``host:port`` of an
earlier order must not trip a "host key changed" warning, so each order records its key
on first contact (``accept-new``) in a file of its own.

``credentials_for`` chooses how verification logs in: what was given, else what was
remembered, else the renter's default key, else the ssh-agent.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from clore._files import locked, write_atomic
from clore._paths import data_dir
from clore._wire import Order
from clore.rentals.access import default_public_key, private_key_beside

if TYPE_CHECKING:
    from clore.rentals.verify import Credentials

__all__ = [
    "LOGINS_FILE",
    "MAX_LOGINS",
    "LoginsFileError",
    "RentalLogin",
    "RentalLogins",
    "credentials_for",
    "jupyter_url",
    "known_hosts_path",
    "login_key",
]

LOGINS_FILE: Final = "rental-logins.json"
#: The newest entries kept (an order lives at most weeks; a renter rents far fewer).
MAX_LOGINS: Final = 1000
_VERSION: Final = 1


class LoginsFileError(ValueError):
    """The logins file cannot be read (not JSON, or not this schema)."""


class RentalLogin(msgspec.Struct, frozen=True, kw_only=True):
    """How one order is logged in to: ``user``, the ``public_key`` file sent and its
    ``private_key`` beside it (paths), the ``password`` and the ``jupyter_token`` (never
    shown), when saved."""

    order_id: int
    ct: float
    user: str = "root"
    public_key: str | None = None
    private_key: str | None = None
    password: str | None = None
    jupyter_token: str | None = None
    saved_at: float = 0.0

    def __repr__(self) -> str:
        secret = ", password=<hidden>" if self.password else ""
        secret += ", jupyter_token=<hidden>" if self.jupyter_token else ""
        return (
            f"RentalLogin(order_id={self.order_id}, ct={self.ct}, user={self.user!r}, "
            f"public_key={self.public_key!r}, private_key={self.private_key!r}{secret})"
        )

    __str__ = __repr__

    def matches(self, order: Order) -> bool:
        """True when this entry is of ``order`` (same id, same creation time)."""
        return self.order_id == order.id and abs(self.ct - float(order.ct)) < 1e-6

    def credentials(self) -> Credentials | None:
        """The verification ``Credentials`` this entry gives (the private key when it is
        still there, the password); None when neither is usable."""
        from clore.rentals.verify import Credentials

        keys = tuple(Path(p) for p in (self.private_key,) if p and Path(p).is_file())
        if not keys and not self.password:
            return None
        return Credentials(username=self.user, password=self.password, key_files=keys)


class _Document(msgspec.Struct, kw_only=True):
    v: int = _VERSION
    logins: list[RentalLogin] = msgspec.field(default_factory=list)


class RentalLogins:
    """The logins file at ``path`` (default ``rental-logins.json`` in the data dir)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / LOGINS_FILE

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _read(self) -> _Document:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return _Document()
        except OSError as exc:
            raise LoginsFileError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            document = msgspec.json.decode(data, type=_Document)
        except msgspec.DecodeError:
            # The message names the file only: a decode error may quote its contents.
            raise LoginsFileError(f"{self.path} is damaged; fix or remove it") from None
        if document.v != _VERSION:
            raise LoginsFileError(f"{self.path} has version {document.v}, not {_VERSION}")
        return document

    def remember(
        self,
        order: Order,
        *,
        public_key: Path | None = None,
        private_key: Path | None = None,
        password: str | None = None,
        jupyter_token: str | None = None,
        user: str = "root",
        now: float | None = None,
    ) -> RentalLogin:
        """Keep how ``order`` is logged in to (replacing its entry): its SSH login and the
        Jupyter token it serves with; the private key defaults to the one beside
        ``public_key``."""
        if private_key is None and public_key is not None:
            private_key = private_key_beside(public_key)
        entry = RentalLogin(
            order_id=order.id,
            ct=float(order.ct),
            user=user,
            public_key=None if public_key is None else str(public_key.expanduser().absolute()),
            private_key=None if private_key is None else str(private_key.expanduser().absolute()),
            password=password or None,
            jupyter_token=jupyter_token or None,
            saved_at=time.time() if now is None else now,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.lock_path):
            document = self._read()
            kept = [e for e in document.logins if not e.matches(order)] + [entry]
            kept.sort(key=lambda e: e.saved_at)
            document.logins = kept[-MAX_LOGINS:]
            blob = msgspec.json.format(msgspec.json.encode(document), indent=2)
            write_atomic(self.path, blob + b"\n", mode=0o600)
        return entry

    def get(self, order: Order) -> RentalLogin | None:
        """The entry of ``order``, or None when it was not rented from here."""
        return next((e for e in reversed(self._read().logins) if e.matches(order)), None)

    def forget(self, order: Order) -> bool:
        """Drop the entry of ``order``; True when there was one."""
        if not self.path.exists():
            return False
        with locked(self.lock_path):
            document = self._read()
            kept = [e for e in document.logins if not e.matches(order)]
            if len(kept) == len(document.logins):
                return False
            document.logins = kept
            blob = msgspec.json.format(msgspec.json.encode(document), indent=2)
            write_atomic(self.path, blob + b"\n", mode=0o600)
        return True


def login_key(
    order: Order, *, logins: RentalLogins | None = None, home: Path | None = None
) -> Path | None:
    """The private key to log in to ``order`` with: the one beside the public key it was
    rented with (remembered), else the private half of the default key; None when neither
    exists, or when it was rented with a password alone (ssh asks for it). An unreadable
    logins file or default key counts as none."""
    try:
        saved = (logins if logins is not None else RentalLogins()).get(order)
    except LoginsFileError:
        saved = None
    if saved is not None and saved.private_key and Path(saved.private_key).is_file():
        return Path(saved.private_key)
    if saved is not None and saved.password and not saved.private_key:
        return None
    try:
        default = default_public_key(home)
    except ValueError:
        return None
    return None if default is None else private_key_beside(default.path)


def jupyter_url(http_url: str, token: str | None) -> str:
    """``http_url`` with ``token`` as Jupyter takes it (``/?token=``, URL-quoted); the URL
    itself without a token."""
    if not token:
        return http_url
    from urllib.parse import quote

    return f"{http_url.rstrip('/')}/?token={quote(token, safe='')}"


def known_hosts_path(order: Order, *, create: bool = True) -> Path:
    """The order's own known-hosts file, ``known_hosts/order-ID-CT`` in the data dir
    (the directory made 0700 when ``create``; the file is written by ssh or verify)."""
    directory = data_dir() / "known_hosts"
    if create and not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory / f"order-{order.id}-{int(float(order.ct))}"


def credentials_for(
    order: Order,
    *,
    identity: Path | None = None,
    password: str | None = None,
    user: str | None = None,
    logins: RentalLogins | None = None,
    home: Path | None = None,
) -> Credentials | None:
    """How to log in to ``order`` for verification: ``identity`` (a private key file)
    and/or ``password`` when given; else what ``RentalLogins`` remembers of it; else the
    private half of the renter's default public key; else the ssh-agent when one runs
    (``SSH_AUTH_SOCK``). None when there is nothing to log in with."""
    from clore.rentals.verify import Credentials

    if identity is not None or password:
        keys = () if identity is None else (identity.expanduser(),)
        return Credentials(username=user or "root", password=password or None, key_files=keys)
    saved = (logins if logins is not None else RentalLogins()).get(order)
    if saved is not None:
        found = saved.credentials()
        if found is not None:
            return found if user is None else _with_user(found, user)
    try:
        default = default_public_key(home)
    except ValueError:
        default = None  # a broken default key cannot log in either
    private = None if default is None else private_key_beside(default.path)
    agent = bool(os.environ.get("SSH_AUTH_SOCK"))
    if private is None and not agent:
        return None
    keys = () if private is None else (private,)
    return Credentials(username=user or "root", key_files=keys, agent=agent)


def _with_user(credentials: Credentials, user: str) -> Credentials:
    from dataclasses import replace

    return replace(credentials, username=user)
