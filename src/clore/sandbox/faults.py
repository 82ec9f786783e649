"""Injected faults: how a call fails when the control plane asked it to.

``db_error`` answers ``{"code": 1}``; ``rate_limit`` answers HTTP 429 ``{"code": 5}``;
``http_500`` answers HTTP 500 with a non-JSON body (the only 500 the sandbox ever sends);
``timeout`` never answers and changes nothing; ``drop_after_commit`` performs the call,
commits, and then drops the connection without answering.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DROP", "FAULTS", "TIMEOUT", "fault_response_parts"]

FAULTS: Final = ("db_error", "rate_limit", "http_500", "timeout", "drop_after_commit")

#: Markers a response carries for the transport to act on.
TIMEOUT: Final = "timeout"
DROP: Final = "drop"


def fault_response_parts(fault: str) -> tuple[int, bytes, str, str | None]:
    """(HTTP status, body, content type, transport marker) of a fault answered up front."""
    if fault == "db_error":
        return 200, b'{"code":1}', "application/json", None
    if fault == "rate_limit":
        return 429, b'{"code":5}', "application/json", None
    if fault == "http_500":
        return 500, b"Internal Server Error (injected by clore sandbox)", "text/plain", None
    return 504, b"", "text/plain", TIMEOUT
