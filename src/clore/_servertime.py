"""The server's clock as a client sees it: an estimate fed from every response. Pure.

Times the API reports or rules on are the server's: an order's ``ct`` (so its time left,
``ct + mrl - now``) and the 600 s spot-lowering window. Against the real API that clock is
the client's to within clock skew; against a sandbox it can run faster
(``--time-scale``) or have jumped (``advance``). ``ServerTime`` keeps an estimate, updated
from the headers of each response, best source first:

1. ``x-sandbox-now`` (the sandbox's unix time, a float) with ``x-sandbox-time-scale``
   (sandbox seconds per real second; ``0`` for a sandbox on an injected clock, which
   moves only when told). Once seen, responses without them leave the estimate alone.
2. ``Date`` (any HTTP server). It has 1 s resolution, so it counts only when it is more
   than ``DATE_THRESHOLD`` seconds off the client's clock (a badly set clock); then the
   estimate is the client's clock plus that offset.
3. Otherwise the client's clock itself.

Between responses the estimate moves with the client's clock at ``time_scale``: server
seconds per second of the client's clock. A clock may declare its own ``time_scale``
(its seconds per real second: ``SystemClock`` 1, the sandbox's ``SimClock`` its scale,
``ManualClock`` 0 as it moves only when told), so a client sharing a sandbox's clock
in-process gets 1, and a real-time client of ``serve --time-scale 60`` gets 60. A client
clock that moves only when told is taken to move with the server's (rate 1: a test that
shares one ``ManualClock``). The estimate never runs backwards.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final, Literal

from clore._clock import Clock, clock_scale
from clore._facts import NOW_HEADER, SCALE_HEADER

__all__ = [
    "DATE_THRESHOLD",
    "ServerTime",
    "clock_scale",
    "parse_sandbox_headers",
]

#: A ``Date`` header this many seconds or less off the client's clock is ignored.
DATE_THRESHOLD: Final = 5.0

Source = Literal["client", "date", "sandbox"]


def _finite(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_sandbox_headers(headers: Mapping[str, str]) -> tuple[float, float] | None:
    """(now, scale) from a sandbox's headers, or None when absent or unreadable."""
    now = _finite(headers.get(NOW_HEADER))
    scale = _finite(headers.get(SCALE_HEADER))
    if now is None or scale is None or scale < 0:
        return None
    return now, scale


def _date(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("date")
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp()


class ServerTime:
    """The estimate of one server's clock (see the module docstring). Thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._source: Source = "client"
        self._anchor_client = 0.0  # client clock at the last observation
        self._anchor_server = 0.0  # server time then ("date": the offset is the difference)
        self._rate = 1.0
        self._floor = -math.inf  # the latest estimate handed out: never go below it

    @property
    def source(self) -> Source:
        """Where the estimate comes from: ``sandbox`` headers, the ``date`` header, ``client``."""
        return self._source

    @property
    def time_scale(self) -> float:
        """Server seconds per second of the client's clock (1 unless a sandbox says otherwise)."""
        return self._rate

    def observe(self, headers: Mapping[str, str], received_at: float) -> None:
        """Learn from a response's headers (lower-case names), received at client time
        ``received_at``."""
        sandbox = parse_sandbox_headers(headers)
        with self._lock:
            if sandbox is not None:
                now, scale = sandbox
                own = clock_scale(self.clock)
                self._source = "sandbox"
                self._anchor_client, self._anchor_server = received_at, now
                self._rate = scale / own if own > 0 else 1.0
                return
            if self._source == "sandbox":
                return  # a response from something in front of the sandbox: keep its time
            date = _date(headers)
            if date is None:
                return
            # The header truncates to the second: the server's time was in [date, date + 1).
            offset = date + 0.5 - received_at
            if abs(offset) > DATE_THRESHOLD:
                self._source = "date"
                self._anchor_client, self._anchor_server = received_at, received_at + offset
            else:
                self._source = "client"
            self._rate = 1.0

    def now(self) -> float:
        """The server's current unix time, as estimated."""
        client = self.clock.time()
        with self._lock:
            if self._source == "client":
                value = client
            else:
                value = self._anchor_server + (client - self._anchor_client) * self._rate
            value = max(value, self._floor)
            self._floor = value
            return value

    def to_client_seconds(self, server_seconds: float) -> float:
        """How long the client waits (seconds of its clock) for ``server_seconds`` to pass.

        A server whose clock moves only when told (rate 0) is never caught up by waiting;
        then the server seconds are returned unchanged, so a caller polls instead of
        waiting forever.
        """
        rate = self._rate
        return server_seconds / rate if rate > 0 else server_seconds
