"""OpenSSH public keys: what one looks like, what a private key looks like, and reading a
key file without ever reading (or sending) a private key.

``public_key_problem`` and ``looks_private`` are pure checks, used by ``create_order``'s
validation and by the CLI's ``--ssh-key``. ``read_public_key`` decides from a file's first
bytes whether it can hold a public key before reading the rest, so a private key file
given by mistake (``id_ed25519`` for ``id_ed25519.pub``) is never read beyond its header;
when ``<file>.pub`` exists and is a public key, that is used instead. Messages never quote
a key's contents.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from clore._errors import ParameterError

__all__ = [
    "KEY_TYPES",
    "MAX_KEY_FILE",
    "PublicKeyFile",
    "looks_private",
    "public_key_problem",
    "read_public_key",
]

#: The key types ``ssh-keygen`` writes public keys for (``ecdsa-sha2-*``, ``sk-*`` families).
KEY_TYPES: Final = "ssh-ed25519, ssh-rsa, ecdsa-sha2-*, sk-*"
#: A key file larger than this cannot be one public key line (the API takes 3072 characters).
MAX_KEY_FILE: Final = 8192
# How much of a file is read to decide whether it can be a public key.
_HEAD: Final = 64

_TYPE: Final = r"(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-[A-Za-z0-9-]+|sk-[A-Za-z0-9@.-]+)"
# TYPE BASE64 [comment]. Every key blob starts with a 4-byte length below 2**24, hence AAAA.
_PUBLIC: Final = re.compile(
    rf"{_TYPE}[ \t]+AAAA[A-Za-z0-9+/]*={{0,2}}(?:[ \t]+[^\x00-\x1f\x7f]*)?", re.ASCII
)
_TYPE_PREFIX: Final = re.compile(rb"(?:ssh-|ecdsa-|sk-)")
_PRIVATE_MARKERS: Final = (
    "PRIVATE KEY-----",  # PEM: OPENSSH, RSA, DSA, EC, PKCS#8 and ENCRYPTED PKCS#8
    "openssh-key-v1",  # the binary OpenSSH format, unarmoured
    "PuTTY-User-Key-File-",  # PuTTY .ppk
    "BEGIN SSH2 ENCRYPTED PRIVATE KEY",  # ssh.com / RFC 4716-style private keys
)
_PRIVATE_HINT: Final = "is a private key: give its public half (the .pub file) instead"
_NOT_PUBLIC: Final = (
    f"is not an OpenSSH public key (expected 'TYPE BASE64 [comment]', TYPE one of {KEY_TYPES})"
)


def looks_private(text: str | bytes) -> bool:
    """True when ``text`` (a whole value or a file's first bytes) holds a private key marker."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return any(marker in text for marker in _PRIVATE_MARKERS)


def public_key_problem(text: str) -> str | None:
    """Why ``text`` (already trimmed) is not one OpenSSH public key line, as a predicate
    ("is a private key: ..."); None when it is one."""
    if looks_private(text):
        return _PRIVATE_HINT
    if "\n" in text or "\r" in text:
        return "holds several lines: expected one public key on one line"
    if _PUBLIC.fullmatch(text) is None:
        return _NOT_PUBLIC
    return None


@dataclass(frozen=True)
class PublicKeyFile:
    """A public key read from ``path``; ``instead_of`` is the file given, when ``path`` is
    its ``.pub`` sibling used in its place."""

    text: str
    path: Path
    instead_of: Path | None = None


def _problem_of_file(path: Path) -> tuple[str | None, str | None]:
    """(the key text, None) when ``path`` holds one public key line, else (None, why)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None, "does not exist"
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or type(exc).__name__})"
    if stat.S_ISDIR(info.st_mode):
        return None, "is a directory, not a public key file"
    if not stat.S_ISREG(info.st_mode):
        return None, "is not a regular file"
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD)
            # Decide on the first bytes: a private key is never read beyond its header.
            if looks_private(head):
                return None, _PRIVATE_HINT
            if _TYPE_PREFIX.match(head.lstrip(b"\xef\xbb\xbf \t\r\n")) is None:
                return None, _NOT_PUBLIC
            if info.st_size > MAX_KEY_FILE:
                return None, f"is too large to be a public key ({info.st_size} bytes)"
            data = head + handle.read(MAX_KEY_FILE + 1 - len(head))
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or type(exc).__name__})"
    if len(data) > MAX_KEY_FILE:
        return None, "is too large to be a public key"
    try:
        text = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return None, "is not an OpenSSH public key (not UTF-8 text)"
    why = public_key_problem(text)
    return (text, None) if why is None else (None, why)


def _shown(path: Path) -> str:
    # A path is echoed in a one-line error: escape what would break or colour the line.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))


def read_public_key(path: Path, param: str = "ssh_key") -> PublicKeyFile:
    """The public key in ``path``, or in ``<path>.pub`` when ``path`` is not one and that is.

    Raises ParameterError(``param``) naming the file and why it is refused, never its content.
    """
    text, why = _problem_of_file(path)
    if text is not None:
        return PublicKeyFile(text, path)
    if not path.name.endswith(".pub"):
        sibling = path.with_name(path.name + ".pub")
        sibling_text, _ = _problem_of_file(sibling)
        if sibling_text is not None:
            return PublicKeyFile(sibling_text, sibling, instead_of=path)
    raise ParameterError(param, f"{_shown(path)} {why}")
