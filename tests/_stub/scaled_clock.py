"""Fake clocks for a client on real time talking to a time-scaled sandbox, without sleeping.

``FakeRealClock`` is a ``ManualClock`` that declares itself real time (``time_scale`` 1),
as ``SystemClock`` does; ``ScaledClock`` runs ``scale`` times faster than it, like the
sandbox's ``SimClock`` over real time (and can be advanced). A ``Sandbox(clock=ScaledClock)``
answers with ``x-sandbox-time-scale: <scale>``, so a client on the ``FakeRealClock`` sees
what a real client of ``clore sandbox serve --time-scale <scale>`` sees.
"""

from __future__ import annotations

import asyncio
import threading

from clore._clock import ManualClock

__all__ = ["FakeRealClock", "ScaledClock"]


class FakeRealClock(ManualClock):
    """A ManualClock standing in for the real clock (its sleeps are instant)."""

    time_scale = 1.0


class ScaledClock:
    """``scale`` seconds per second of ``real``, plus whatever ``advance`` added."""

    def __init__(self, real: FakeRealClock, scale: float) -> None:
        self.real = real
        self.scale = float(scale)
        self._origin = real.time()
        self._advanced = 0.0
        self._lock = threading.Lock()

    @property
    def time_scale(self) -> float:
        return self.scale

    def time(self) -> float:
        with self._lock:
            return self._origin + (self.real.time() - self._origin) * self.scale + self._advanced

    def monotonic(self) -> float:
        return self.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._advanced += max(0.0, float(seconds))

    def sleep(self, seconds: float) -> None:
        self.real.sleep(max(0.0, seconds) / self.scale)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)
