"""Where a key's pacing history lives: in memory for one client, in a file for a machine.

``clore._pacing`` decides; this module keeps what the decisions read and write, behind
the ``Store`` protocol. ``MemoryStore`` shares the history between the threads and tasks
of one client; ``FileStore`` between every process on the machine that uses the same key
(a locked JSON file named by a hash of the key, never the key itself). Only a store
shared between processes can hold a dead process's hold, so the file store is also where
such a hold is released (``release_dead_hold``, by the rules of ``clore._holder``).
``make_pacer`` picks the store for a client, the Redis of a fleet among them
(``clore._pacing_redis``, when a URL is configured).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from clore._files import locked
from clore._holder import is_gone, this_process
from clore._pacing import LOCAL, Pacer, Pacing, PacingState

__all__ = ["FileStore", "MemoryStore", "make_pacer", "release_dead_hold", "state_file"]

T = TypeVar("T")
log = logging.getLogger("clore")


def release_dead_hold(state: PacingState, now: float) -> None:
    """Release the hold of a holder that certainly no longer runs.

    Its request's answer, if the server counted the request at all, came no later than
    now: the intervals count from now, as if the answer had just arrived.
    """
    holder, until = state.holder, state.inflight_until
    if holder is None or until is None or until <= now:
        return
    if holder.same_process(this_process()) or not is_gone(holder):
        return
    state.inflight_until = None
    state.holder = None
    state.last_request = max(state.last_request or now, now)
    if holder.kind == "create":
        state.last_create = max(state.last_create or now, now)
    log.debug("pacing: released the hold of process %d, which no longer runs", holder.pid)


class MemoryStore:
    """History shared by the threads and tasks of one client.

    Every hold in it is this process's own, so ``now`` has nothing to release.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = PacingState()

    def transact(self, fn: Callable[[PacingState], T], *, now: float | None = None) -> T:
        with self._lock:
            return fn(self._state)


def state_file(api_key: str | None, directory: Path) -> Path:
    """The state file of ``api_key``: named by a hash of the key, never the key itself."""
    if not api_key:
        return directory / "anonymous.json"
    digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    return directory / f"{digest}.json"


class FileStore:
    """History shared by every process on the machine that uses the same key.

    The file is locked (``clore._files.locked``) for the few microseconds of a decision
    and rewritten in place (a rename would break the lock); it is not flushed to disk: a
    history lost in a crash costs at most one unpaced request. A corrupt or missing file
    is a fresh history, with the same cost: the server's 429 is retried.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fallback: MemoryStore | None = None

    def transact(self, fn: Callable[[PacingState], T], *, now: float | None = None) -> T:
        with self._lock:
            if self._fallback is None:
                try:
                    return self._transact_file(fn, now)
                except OSError as exc:
                    # A cache directory that cannot be written (a read-only home, a full
                    # disk) must not stop the client: pace this process alone from now on.
                    log.warning(
                        "pacing: cannot use %s (%s); pacing within this process only",
                        self.path,
                        exc.strerror or exc,
                    )
                    self._fallback = MemoryStore()
            # Memory holds only this process's holds: there is nothing dead to release.
            return self._fallback.transact(fn)

    def _transact_file(self, fn: Callable[[PacingState], T], now: float | None) -> T:
        with locked(self.path) as fd:
            raw = b""
            while chunk := os.read(fd, 65536):
                raw += chunk
            try:
                state = PacingState.from_json(json.loads(raw))
            except ValueError:  # an empty file too: a fresh history
                state = PacingState()
            before = state.to_json()
            if now is not None:
                release_dead_hold(state, now)
            result = fn(state)
            after = state.to_json()
            if after != before:
                data = json.dumps(after).encode()
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, data)
                os.ftruncate(fd, len(data))
            return result


def make_pacer(
    config: Pacing,
    api_key: str | None,
    *,
    use_file: bool,
    profile: str | None = None,
    real_clock: bool = True,
) -> Pacer:
    """A pacer over a ``FileStore`` in ``cache_dir()/pacing``, a fresh ``MemoryStore``,
    or the Redis of a fleet (``clore._pacing_redis``).

    Redis when ``config.url`` names one, or, where the file would be used, when
    ``clore.config.resolve_pacing(profile)`` does (``CLORE_PACING_URL``, the profile's
    ``pacing_url``; ``CLORE_PACING=local`` keeps the file). Times come from Redis's clock
    with the ``real_clock``, else from the caller's (an injected clock).
    """
    url = config.url
    if url is None and use_file and config.enabled:
        from clore.config import resolve_pacing

        url = resolve_pacing(profile)
    if url is not None and url != LOCAL and config.enabled:
        from clore._pacing_redis import RedisPacer

        return RedisPacer(config, url, api_key, server_clock=real_clock)
    if use_file and config.enabled and sys.platform != "win32":
        from clore._paths import cache_dir

        return Pacer(config, FileStore(state_file(api_key, cache_dir() / "pacing")))
    return Pacer(config, MemoryStore())
