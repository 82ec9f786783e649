"""Per-key rate limits, exactly as the reference's decision states them.

A request is accepted when at least 1.0 s (simulated) has passed since the key's last
accepted request, and a ``create_order`` when 5.0 s have passed since the key's last
accepted ``create_order``. Rejected requests do not move either window. Windows live in
the sandbox process's memory: they restart with it.
"""

from __future__ import annotations

import threading

from clore._facts import CREATE_INTERVAL, MIN_INTERVAL

__all__ = ["RateLimiter"]

# Sums of float sleeps on a shared clock can land a hair short of a whole second.
_SLACK = 1e-6


class RateLimiter:
    """Decides, per API key, whether a request is accepted at simulated time ``now``."""

    def __init__(
        self,
        enabled: bool = True,
        *,
        interval: float = MIN_INTERVAL,
        create_interval: float = CREATE_INTERVAL,
    ) -> None:
        self.enabled = enabled
        self.interval = interval
        self.create_interval = create_interval
        self._last: dict[str, float] = {}
        self._last_create: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, endpoint: str, now: float) -> bool:
        """True (and the windows move) when ``key`` may call ``endpoint`` at ``now``."""
        if not self.enabled:
            return True
        creating = endpoint == "create_order"
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval - _SLACK:
                return False
            if creating:
                last_create = self._last_create.get(key)
                if last_create is not None and now - last_create < self.create_interval - _SLACK:
                    return False
                self._last_create[key] = now
            self._last[key] = now
            return True

    def clear(self) -> None:
        """Forget every window (after a reset)."""
        with self._lock:
            self._last.clear()
            self._last_create.clear()
