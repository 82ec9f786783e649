"""Server time in the workflows: "now" on the API's clock, and its seconds on the loop's.

Everything a workflow compares with an API timestamp (an order's ``ct``, its end at
``ct + mrl``, the 600 s spot-lowering window) is measured on the server's clock, which a
time-scaled or advanced sandbox moves differently from the loop's. ``TimeBase`` asks the
client for it (``SupportsServerTime``: ``clore.Clore`` estimates it from every response)
and falls back to the loop's clock at scale 1 for clients that do not offer it (test
fakes). Polling, sleeping, ``--until`` and event times stay on the loop's clock.
"""

from __future__ import annotations

import math

from clore._clock import Clock
from clore.workflows._protocols import SupportsServerTime

__all__ = ["TimeBase"]


class TimeBase:
    """The API server's clock as seen by one workflow (its client and its clock)."""

    def __init__(self, client: object, clock: Clock) -> None:
        self.client = client
        self.clock = clock

    def now(self) -> float:
        """The server's current unix time (the client's estimate, else the loop's clock)."""
        if isinstance(self.client, SupportsServerTime):
            return float(self.client.server_time())
        return self.clock.time()

    @property
    def scale(self) -> float:
        """Server seconds per second of the loop's clock (1 unless the client says so)."""
        if isinstance(self.client, SupportsServerTime):
            value = self.client.time_scale
            if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
                return float(value)
        return 1.0

    def to_server(self, seconds: float) -> float:
        """Server seconds that pass while the loop's clock moves ``seconds`` (a poll gap)."""
        return seconds * self.scale

    def to_client(self, seconds: float) -> float:
        """Seconds of the loop's clock until ``seconds`` of server time have passed (a
        server whose clock stands still: ``seconds`` unchanged, so the loop polls again)."""
        scale = self.scale
        return seconds / scale if scale > 0 else seconds
