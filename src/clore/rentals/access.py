"""How a renter reaches a rented container: the ports it forwards and the SSH public key it
trusts.

``parse_ports`` turns ``22:tcp,8888:http`` (or a list, or a mapping) into the ``ports`` of
``create_order``. The key functions read an OpenSSH public key without ever reading (or
sending) a private one: ``read_public_key`` decides from a file's first bytes, and takes
``FILE.pub`` in place of a private ``FILE``; ``default_public_key`` finds the renter's own
key in ``~/.ssh``. Bad input raises ``clore.ParameterError`` naming the parameter, never
quoting a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from clore._sshkey import PublicKeyFile, looks_private, public_key_problem, read_public_key
from clore._validate import validate_ports

__all__ = [
    "DEFAULT_KEY_NAMES",
    "PublicKeyFile",
    "default_public_key",
    "looks_private",
    "parse_ports",
    "public_key_problem",
    "read_public_key",
]

#: The public keys looked for in ``~/.ssh``, in this order.
DEFAULT_KEY_NAMES: Final = ("id_ed25519.pub", "id_rsa.pub")


def parse_ports(
    ports: str | Iterable[str] | Mapping[str | int, str] | None,
) -> dict[str, str] | None:
    """``"22:tcp,8888:http"`` (or ``["22:tcp"]``, ``{22: "tcp"}``) -> ``{"22": "tcp", ...}``;
    None when empty. ``ParameterError("ports", ...)`` for a bad port, protocol or a second
    ``http`` port."""
    if ports is None:
        return None
    if isinstance(ports, str):
        ports = [part.strip() for part in ports.split(",") if part.strip()]
    if not isinstance(ports, Mapping):
        ports = list(ports)
    return validate_ports(ports) if ports else None


def default_public_key(home: Path | None = None, param: str = "ssh_key") -> PublicKeyFile | None:
    """The first of ``~/.ssh/id_ed25519.pub``, ``~/.ssh/id_rsa.pub`` that exists, read
    (``ParameterError(param)`` when it is not a public key); None when there is none."""
    ssh_dir = (Path.home() if home is None else home) / ".ssh"
    found = next((ssh_dir / n for n in DEFAULT_KEY_NAMES if (ssh_dir / n).is_file()), None)
    return None if found is None else read_public_key(found, param)
