"""The requests a ``late_commit`` fault holds back, until they are due to take effect.

They are kept in the database (one meta value), so every process serving the file sees
them, and ``reset`` or clearing the faults drops them. A held request is due just before
the next request to its endpoint, or, when it was given seconds, at that sandbox time.
"""

from __future__ import annotations

from typing import Final

import msgspec

from clore.sandbox.backend.repository import Database

__all__ = ["HELD_KEY", "Held", "HeldRequests"]

#: The meta key holding the requests of ``late_commit`` faults not yet applied.
HELD_KEY: Final = "held_requests"


class Held(msgspec.Struct, forbid_unknown_fields=False):
    """A request held back by ``late_commit``: what arrived, when, and when it applies."""

    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    arrived: float
    #: Sandbox time it applies at; None: just before the next request to ``endpoint``.
    due: float | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[Held]).decode


class HeldRequests:
    """The held requests of a sandbox's database (any process on the file sees them)."""

    def __init__(self, store: Database) -> None:
        self.store = store

    def hold(self, held: Held) -> None:
        """Keep ``held`` until it is due."""
        with self.store.write() as repo:
            pending = _decode(repo.get_meta(HELD_KEY) or b"[]")
            pending.append(held)
            repo.set_meta(HELD_KEY, _encode(pending).decode())

    def pending(self) -> list[Held]:
        """Every held request, oldest first."""
        with self.store.peek() as repo:
            return _decode(repo.get_meta(HELD_KEY) or b"[]")

    def take(self, endpoint: str | None, now: float) -> list[Held]:
        """Remove and return the held requests due now, oldest first: those due by time,
        and those waiting for the next request to ``endpoint`` (None: by time only)."""
        with self.store.peek() as repo:
            if not repo.get_meta(HELD_KEY):
                return []  # the common case: one indexed read, no write lock
        with self.store.write() as repo:
            pending = _decode(repo.get_meta(HELD_KEY) or b"[]")
            due = [h for h in pending if _is_due(h, endpoint, now)]
            if due:
                rest = [h for h in pending if not _is_due(h, endpoint, now)]
                repo.set_meta(HELD_KEY, _encode(rest).decode() if rest else "")
            return due


def _is_due(held: Held, endpoint: str | None, now: float) -> bool:
    if held.due is None:
        return held.endpoint == endpoint
    return held.due <= now
