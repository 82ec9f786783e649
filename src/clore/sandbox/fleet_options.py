"""How a sandbox runs its orders' machines (``MachineOptions``), and where a file
database keeps them (``machines_root``)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clore.sandbox.machines.isolation import IsolationMode

__all__ = ["MachineOptions", "MachinesMode", "machines_root"]

#: Where the machines run: see ``clore.sandbox.fleet``.
MachinesMode = Literal["auto", "local", "background", "off"]


def machines_root(db: str | Path) -> Path:
    """The machines directory of a file database: ``NAME.machines`` beside ``NAME.db``."""
    path = Path(db).expanduser()
    return path.with_name(f"{path.stem}.machines")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class MachineOptions:
    """How a sandbox runs its orders' machines.

    ``host`` is where their SSH and relay ports listen; anything but loopback needs
    ``public=True`` (``serve --expose-machines-publicly``), and orders then name
    ``advertise`` (default: ``host``, or this machine's name for a wildcard address) as
    their ``pub_cluster``. ``keep`` keeps each stopped order's directory; ``root`` holds
    them (default: beside a file database, else a temporary directory).
    """

    mode: MachinesMode = "auto"
    keep: bool = False
    isolation: IsolationMode = "auto"
    host: str = "127.0.0.1"
    public: bool = False
    advertise: str | None = None
    root: Path | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "local", "background", "off"):
            raise ValueError(f"machines: one of auto, local, background, off, not {self.mode!r}")
        if not _is_loopback(self.host) and not self.public:
            raise ValueError(
                f"machines listen on loopback only; {self.host!r} would expose every order's "
                "SSH and ports to the network (--expose-machines-publicly means it)"
            )

    @property
    def shown_host(self) -> str:
        """The host orders name in ``pub_cluster``."""
        if self.advertise:
            return self.advertise
        if self.host in ("0.0.0.0", "::", ""):
            return socket.getfqdn()
        return self.host
