"""How a renter reaches a rented container: the ports it forwards, the SSH public key it
trusts, and the renter's own SSH configuration.

``parse_ports`` turns ``22:tcp,8888:http`` (or a list, or a mapping) into the ``ports`` of
``create_order``. The key functions read an OpenSSH public key without ever reading (or
sending) a private one: ``read_public_key`` decides from a file's first bytes, and takes
``FILE.pub`` in place of a private ``FILE``; ``default_public_key`` finds the renter's own
key (``$CLORE_SSH_KEY``, else ``~/.ssh``), ``private_key_beside`` its private half.
``login_problem`` is the rule that refuses an order whose SSH port nobody could log in
to. ``add_include`` puts an ``Include`` line at the top of ``~/.ssh/config`` once, keeping
a backup. Bad input raises ``clore.ParameterError`` naming the parameter, never quoting a
key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from clore._files import write_atomic
from clore._sshkey import PublicKeyFile, looks_private, public_key_problem, read_public_key
from clore._validate import validate_ports

__all__ = [
    "DEFAULT_KEY_NAMES",
    "KEY_ENV",
    "IncludeAdded",
    "PublicKeyFile",
    "add_include",
    "default_public_key",
    "login_problem",
    "looks_private",
    "parse_ports",
    "private_key_beside",
    "public_key_problem",
    "read_public_key",
    "ssh_forwarded",
]

#: The public keys looked for in ``~/.ssh``, in this order.
DEFAULT_KEY_NAMES: Final = ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub")
#: The environment variable naming the renter's own public key file (checked first).
KEY_ENV: Final = "CLORE_SSH_KEY"


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


def default_public_key(
    home: Path | None = None, param: str = "ssh_key", *, env: Mapping[str, str] | None = None
) -> PublicKeyFile | None:
    """The renter's own public key, read: the file ``$CLORE_SSH_KEY`` names (a private
    key's ``.pub`` sibling in its place), else the first of ``~/.ssh/id_ed25519.pub``,
    ``id_ecdsa.pub``, ``id_rsa.pub`` that exists; None when there is none.
    ``ParameterError(param)`` when the file found is not a public key."""
    configured = (os.environ if env is None else env).get(KEY_ENV, "").strip()
    if configured:
        return read_public_key(Path(configured).expanduser(), f"{param} (${KEY_ENV})")
    ssh_dir = (Path.home() if home is None else home) / ".ssh"
    found = next((ssh_dir / n for n in DEFAULT_KEY_NAMES if (ssh_dir / n).is_file()), None)
    return None if found is None else read_public_key(found, param)


def private_key_beside(public: Path) -> Path | None:
    """The private half of the public key file ``public`` (``id_x`` for ``id_x.pub``),
    when it exists beside it; None otherwise. The file is not read."""
    if public.suffix != ".pub":
        return None
    private = public.with_suffix("")
    return private if private.is_file() else None


def ssh_forwarded(ports: Mapping[str, str] | None) -> bool:
    """True when ``ports`` (``parse_ports``' form) forwards container port 22 over tcp."""
    return bool(ports) and (ports or {}).get("22") == "tcp"


def login_problem(
    ports: Mapping[str, str] | None, *, ssh_key: str | None, ssh_password: str | None
) -> str | None:
    """Why nobody could log in to an order with these settings, or None: port 22 is
    forwarded but neither a public key nor a password is given."""
    if not ssh_forwarded(ports) or ssh_key or ssh_password:
        return None
    return (
        "port 22 is forwarded but no SSH key or password would be set, so nobody could log "
        f"in: give --ssh-key FILE.pub or --ssh-password TEXT, set ${KEY_ENV}, or create a "
        "key with `ssh-keygen -t ed25519`"
    )


@dataclass(frozen=True)
class IncludeAdded:
    """``add_include`` changed ``config``: the line it added and the copy of the old file
    (None when there was no file)."""

    config: Path
    line: str
    backup: Path | None


_INCLUDE: Final = re.compile(r"^\s*include\s*[= \t]\s*(.+?)\s*$", re.IGNORECASE)


def _includes(text: str, ssh_dir: Path) -> list[Path]:
    """The files the ``Include`` lines of a config name (relative ones are under ~/.ssh)."""
    found: list[Path] = []
    for line in text.splitlines():
        match = _INCLUDE.match(line)
        if match is None:
            continue
        for word in match.group(1).split():
            path = Path(word.strip('"')).expanduser()
            found.append(path if path.is_absolute() else ssh_dir / path)
    return found


def _spelled(path: Path, home: Path) -> str:
    """``~/.ssh/clore_config`` for a file under ``home``, else the absolute path."""
    absolute = path.expanduser().absolute()
    try:
        shown = "~/" + absolute.relative_to(home).as_posix()
    except ValueError:
        shown = absolute.as_posix()
    return f'"{shown}"' if any(ch.isspace() for ch in shown) else shown


def add_include(
    include: Path, *, config: Path | None = None, home: Path | None = None
) -> IncludeAdded | None:
    """Put ``Include INCLUDE`` at the top of ``config`` (default ``~/.ssh/config``) unless
    an ``Include`` line there already names it; returns what changed, or None.

    The old file is copied first to ``config.clore-backup`` (``.1``, ``.2``, ... when
    taken); the new one is written atomically with mode 0600, a missing ``~/.ssh`` made
    0700. (An ``Include`` must come before the first ``Host`` block, or it applies only
    inside that block.)
    """
    home = Path.home() if home is None else home
    config = home / ".ssh" / "config" if config is None else config
    try:
        old = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = None
    target = include.expanduser().absolute()
    if old is not None and any(p.absolute() == target for p in _includes(old, config.parent)):
        return None
    line = f"Include {_spelled(include, home)}"
    backup: Path | None = None
    if old is None:
        config.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    else:
        backup = config.with_name(config.name + ".clore-backup")
        number = 0
        while backup.exists():
            number += 1
            backup = config.with_name(f"{config.name}.clore-backup.{number}")
        write_atomic(backup, old, mode=0o600)
    body = f"# Added by `clore ssh-config --write`: entries for your Clore orders.\n{line}\n"
    if old:
        body += "\n" + old
    write_atomic(config, body, mode=0o600)
    return IncludeAdded(config, line, backup)
