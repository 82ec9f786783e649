"""Injected faults: how a call fails when the control plane asked it to.

A fault is queued per endpoint (``Sandbox.inject_fault``, ``POST /_sandbox/faults``,
``clore sandbox fault``) and consumed by the next call of that endpoint, before its key
and the rate limiter are looked at. ``FAULT_HELP`` says what each one does:

- answered up front, nothing changes: ``db_error``, ``rate_limit``, ``rate_limit_200``,
  ``http_500``, ``http_502_json``, ``garbled``, ``timeout``, ``phantom_success``;
- the call is performed and committed, then its answer is lost or spoiled:
  ``drop_after_commit``, ``timeout_after_commit``, ``http_500_after_commit``,
  ``garbled_after_commit``;
- ``late_commit``: answered as a timeout with nothing changed yet; the request is held
  (``held.HeldRequests``, stored in the database) and applied later, as if it had reached the
  server late: just before the next request to the same endpoint, or, given ``seconds``,
  once that much sandbox time has passed. The late request is applied as it was sent
  (its key, its body), not rate-limited and not counted by the limiter.

Two faults take ``seconds``: ``rate_limit`` (sent as ``Retry-After``) and ``late_commit``.
A queued fault with seconds is stored as ``name@seconds`` (``fault_spec``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

__all__ = [
    "AFTER_COMMIT",
    "DROP",
    "FAULTS",
    "FAULT_HELP",
    "MAX_SECONDS",
    "TIMED",
    "TIMEOUT",
    "fault_response_parts",
    "fault_spec",
    "parse_fault",
]

#: What each fault does (the CLI's help and docs/sandbox.md say the same).
FAULT_HELP: Final[Mapping[str, str]] = {
    "db_error": 'answer {"code": 1}; nothing changes',
    "rate_limit": 'HTTP 429 {"code": 5} (with seconds: a Retry-After header); nothing changes',
    "http_500": "HTTP 500 with a plain-text body; nothing changes",
    "timeout": "no answer; nothing changes",
    "drop_after_commit": "the call takes effect, then the connection drops unanswered",
    "rate_limit_200": 'HTTP 200 {"code": 5}: the code without the 429; nothing changes',
    "http_502_json": 'HTTP 502 with a JSON body {"code": 0}; nothing changes',
    "garbled": "HTTP 200 with a body that is not JSON (a proxy's page); nothing changes",
    "phantom_success": 'answer {"code": 0} but do nothing',
    "timeout_after_commit": "the call takes effect, then no answer",
    "http_500_after_commit": "the call takes effect, then HTTP 500 with a plain-text body",
    "garbled_after_commit": "the call takes effect, then HTTP 200 with a body that is not JSON",
    "late_commit": (
        "no answer and nothing changes yet; the request takes effect later: just before the "
        "next request to the endpoint, or after `seconds` of sandbox time"
    ),
}

FAULTS: Final = tuple(FAULT_HELP)

#: Faults whose call is performed (and committed) before the answer is lost or spoiled.
AFTER_COMMIT: Final = frozenset(
    {"drop_after_commit", "timeout_after_commit", "http_500_after_commit", "garbled_after_commit"}
)
#: Faults that take ``seconds``.
TIMED: Final = frozenset({"rate_limit", "late_commit"})
#: The most ``seconds`` a fault may take (ten years, as ``advance`` allows).
MAX_SECONDS: Final = 10 * 365 * 86400.0

#: Markers a response carries for the transport to act on.
TIMEOUT: Final = "timeout"
DROP: Final = "drop"

_PLAIN = "text/plain"
_JSON = "application/json"
_PROXY_PAGE = b"<html><body><h1>502 Bad Gateway</h1>(injected by clore sandbox)</body></html>"
_SERVER_ERROR = b"Internal Server Error (injected by clore sandbox)"


def fault_spec(fault: str, seconds: float | None = None) -> str:
    """How a queued fault is stored: its name, ``@seconds`` appended when given.

    Raises ValueError for an unknown fault, seconds on a fault that takes none, or
    seconds that are not a finite number from 0 to ten years.
    """
    if fault not in FAULT_HELP:
        raise ValueError(f"fault: one of {', '.join(FAULTS)}")
    if seconds is None:
        return fault
    if fault not in TIMED:
        raise ValueError(f"seconds: only {' and '.join(sorted(TIMED))} take seconds")
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS):
        raise ValueError("seconds: a finite number from 0 to ten years")
    return f"{fault}@{float(seconds)!r}"


def parse_fault(spec: str) -> tuple[str, float | None]:
    """(fault, seconds or None) of a stored ``fault_spec``."""
    name, at, seconds = spec.partition("@")
    return name, float(seconds) if at else None


def fault_response_parts(fault: str) -> tuple[int, bytes, str, str | None]:
    """(HTTP status, body, content type, transport marker) answering ``fault``: the whole
    answer of an up-front fault, the spoiled answer of one after commit."""
    if fault == "db_error":
        return 200, b'{"code":1}', _JSON, None
    if fault == "rate_limit":
        return 429, b'{"code":5}', _JSON, None
    if fault == "rate_limit_200":
        return 200, b'{"code":5}', _JSON, None
    if fault in ("http_500", "http_500_after_commit"):
        return 500, _SERVER_ERROR, _PLAIN, None
    if fault == "http_502_json":
        return 502, b'{"code":0}', _JSON, None
    if fault in ("garbled", "garbled_after_commit"):
        return 200, _PROXY_PAGE, "text/html", None
    if fault == "phantom_success":
        return 200, b'{"code":0}', _JSON, None
    return 504, b"", _PLAIN, TIMEOUT  # timeout, timeout_after_commit, late_commit
