"""Who may use the control plane (``/_sandbox/...``), and text made safe for a header.

The rule: without a control token, only loopback peers are served; with one, every
control request (loopback included) must carry it in the ``x-sandbox-token`` header.
The in-process transports count as loopback. The API under ``/v1/`` is not affected: it
has its own keys. ``header_text`` turns any text (request text included) into a header
value that no HTTP library can refuse.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Final

from clore._facts import TOKEN_HEADER

__all__ = [
    "TOKEN_ENV",
    "TOKEN_HEADER",
    "ControlAccess",
    "ControlAccessError",
    "check_token",
    "header_text",
    "is_loopback_address",
]

#: The request header that carries the control token.
#: The environment variable ``serve`` and ``ControlClient`` read the token from.
TOKEN_ENV: Final = "CLORE_SANDBOX_TOKEN"
#: Refusal reasons, sent as the ``error`` of a code-3 answer.
LOOPBACK_ONLY: Final = "control_plane_loopback_only"
TOKEN_REQUIRED: Final = "control_token_required"

MIN_TOKEN: Final = 16
MAX_TOKEN: Final = 256
MAX_HEADER_TEXT: Final = 512


class ControlAccessError(ValueError):
    """A control token or a listening address that ``serve`` refuses (a usage error)."""


def check_token(token: str | None, name: str = "control token") -> str | None:
    """``token`` stripped of surrounding whitespace, or ControlAccessError (never echoing it).

    A token is 16 to 256 visible ASCII characters: it must fit in a header unchanged, and a
    short one could be guessed by anyone who can reach the port.
    """
    if token is None:
        return None
    token = token.strip()
    if not token:
        return None
    if not all("\x21" <= ch <= "\x7e" for ch in token):
        raise ControlAccessError(f"{name}: only visible ASCII characters, no spaces")
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise ControlAccessError(f"{name}: {MIN_TOKEN} to {MAX_TOKEN} characters")
    return token


def is_loopback_address(host: str | None) -> bool:
    """True for an IP address of the loopback interface (``127.0.0.0/8``, ``::1``, and
    IPv4-mapped ``::ffff:127.x.y.z``); False for anything else, names included."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class ControlAccess:
    """Decides whether one control-plane request is served."""

    def __init__(self, token: str | None = None) -> None:
        self._token = check_token(token)

    @property
    def token_required(self) -> bool:
        """Whether a token is configured (then every control request needs it)."""
        return self._token is not None

    def refusal(self, loopback: bool, presented: str | None) -> str | None:
        """None when the request may be served, else the refusal reason."""
        if self._token is None:
            return None if loopback else LOOPBACK_ONLY
        given = (presented or "").encode("utf-8", "surrogateescape")
        # Constant time: the comparison must not tell a prober how much of a guess was right.
        if hmac.compare_digest(given, self._token.encode("ascii")):
            return None
        return TOKEN_REQUIRED


_ESCAPES: Final = {"\\": "\\\\", "\r": "\\r", "\n": "\\n", "\t": "\\t"}


def header_text(text: str, limit: int = MAX_HEADER_TEXT) -> str:
    """``text`` as a header value: visible ASCII and inner spaces only, at most ``limit``
    characters. Backslash, CR, LF and tab become ``\\\\``, ``\\r``, ``\\n``, ``\\t``; other
    control and non-ASCII characters ``\\uXXXX`` (``\\UXXXXXXXX`` above the BMP); a longer
    text ends in ``...``."""
    pieces = [_escape(ch) for ch in text[: limit + 1]]
    if sum(map(len, pieces)) > limit:
        kept: list[str] = []
        size = 0
        for piece in pieces:
            if size + len(piece) > limit - 3:
                break
            kept.append(piece)
            size += len(piece)
        pieces = [*kept, "..."]
    # h11 refuses a value that starts or ends with whitespace.
    return "".join(pieces).strip(" ")


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if " " <= ch <= "~":
        return ch
    if ord(ch) <= 0xFFFF:
        return f"\\u{ord(ch):04x}"
    return f"\\U{ord(ch):08x}"
