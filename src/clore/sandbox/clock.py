"""The sandbox's clock: real time, sped up ``scale`` times, plus jumps from ``advance``.

``SimClock`` implements ``clore._clock.Clock``, so a client handed ``sandbox.clock``
paces itself on simulated time: with ``time_scale=60`` a client's one-second pause takes
a sixtieth of a real second. A sandbox built on an injected clock (``ManualClock`` in
tests) uses that clock directly instead.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

__all__ = ["SimClock"]


class SimClock:
    """Simulated unix time: ``start + (monotonic elapsed) * scale + advanced``.

    ``start`` lets a restarted sandbox continue from where its database left off, so
    simulated time never runs backwards across restarts.
    """

    def __init__(self, scale: float = 1.0, start: float | None = None) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"time scale must be a finite number > 0, got {scale!r}")
        self.scale = float(scale)
        self._start = time.time() if start is None else float(start)
        self._mono0 = time.monotonic()
        self._advanced = 0.0
        self._lock = threading.Lock()

    @property
    def time_scale(self) -> float:
        """Simulated seconds per real second (``clore._clock``'s optional attribute)."""
        return self.scale

    def time(self) -> float:
        """Current simulated unix time."""
        with self._lock:
            return self._start + (time.monotonic() - self._mono0) * self.scale + self._advanced

    def monotonic(self) -> float:
        """Same as ``time``: simulated time never goes back."""
        return self.time()

    def advance(self, seconds: float) -> None:
        """Jump forward by ``seconds`` (negative values are ignored)."""
        with self._lock:
            self._advanced += max(0.0, float(seconds))

    def offset(self) -> float:
        """Simulated minus real unix time (what a restart needs to resume)."""
        return self.time() - time.time()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        if seconds > 0:
            time.sleep(seconds / self.scale)

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time without blocking the event loop."""
        await asyncio.sleep(max(0.0, seconds) / self.scale)
