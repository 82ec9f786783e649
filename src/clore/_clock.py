"""Clocks: the one way the SDK, the sandbox and the workflows read time and sleep.

Everything that waits takes a ``Clock`` so tests can use ``ManualClock``, whose ``sleep``
moves time forward instantly. A client and an in-process sandbox that share one
``ManualClock`` agree on time exactly: the client's pacing sleeps advance the sandbox's
billing and rate-limit windows, and no test sleeps for real.

A clock may also declare ``time_scale``: how many of its seconds pass per real second
(``SystemClock`` 1, the sandbox's ``SimClock`` its scale, ``ManualClock`` 0 since it moves
only when told). It is optional (undeclared means 1) and relates a client's clock to a
server's: see ``clore._servertime``.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "clock_scale"]


@runtime_checkable
class Clock(Protocol):
    """Time source and sleeper. ``time`` is unix seconds; ``monotonic`` never goes back."""

    def time(self) -> float:
        """Current unix time in seconds."""
        ...

    def monotonic(self) -> float:
        """A monotonic reading in seconds, for measuring intervals."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the event loop."""
        ...


class SystemClock:
    """The real clock."""

    time_scale = 1.0

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when told to; ``sleep`` advances it instantly.

    Thread-safe. ``advance`` is the same as ``sleep``; ``slept`` records every sleep so tests
    can assert what a component waited for.
    """

    #: It moves only when told: no fixed relation to real time.
    time_scale = 0.0

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.time()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (negative values are ignored)."""
        with self._lock:
            self._now += max(0.0, float(seconds))

    def set(self, now: float) -> None:
        """Jump to ``now`` unless that would move time backwards."""
        with self._lock:
            self._now = max(self._now, float(now))

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


def clock_scale(clock: object) -> float:
    """A clock's declared ``time_scale`` (its seconds per real second), 1 when undeclared."""
    value = getattr(clock, "time_scale", 1.0)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        return 1.0
    return float(value)
