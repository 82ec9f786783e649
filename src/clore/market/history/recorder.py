"""The recording loop: fetch the marketplace every interval and store it change-only.

``record_loop`` is a generator of ``Recorded`` results over an injected client and clock
(``ManualClock`` in tests), so a face decides what to print and when to stop early.
Polls start on a fixed grid (start + n × interval), whatever a poll's own pacing waits,
and a poll that failed with an error the API or network will likely get over (rate
limit, transport, database, unexpected answer) is reported and the loop goes on at the
next slot. Anything else (a bad key) ends it.

The time of a snapshot is the server's (``client.server_time()`` when the client has it),
so a recording of a time-scaled sandbox follows the sandbox's clock. USD rates come from
``spot_marketplace`` (the API has no rates endpoint) on the first available server, once
per ``rates_every`` seconds; without a key, or when that call fails, snapshots are stored
without rates and USD figures fall back to ``USD-Blockchain`` prices.

Anyone else who already fetched the listing (``clore watch``, ``clore monitor``) can feed
the same store with ``HistoryStore.record(servers, at=..., rates=...)`` and spend no
request; a snapshot not newer than the last stored one is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from clore._errors import (
    CloreError,
    DatabaseError,
    RateLimitError,
    TransportError,
    UnexpectedResponseError,
)
from clore.market.history.rows import HistoryError, RecordResult

if TYPE_CHECKING:
    from clore._clock import Clock
    from clore._wire import Server, SpotMarket
    from clore.market.history.store import HistoryStore

__all__ = ["MIN_INTERVAL", "MarketClient", "Rates", "Recorded", "record_loop", "record_once"]

#: The vendor's advice: poll the marketplace no more often than once a minute.
MIN_INTERVAL: Final = 60.0
RATES_EVERY: Final = 600.0
_RIDE_OUT: Final = (DatabaseError, RateLimitError, TransportError, UnexpectedResponseError)


class MarketClient(Protocol):
    """What recording needs of a client (``clore.Clore`` has it)."""

    def marketplace(self) -> Sequence[Server]: ...

    def spot_marketplace(self, server_id: int) -> SpotMarket: ...


@dataclass(frozen=True)
class Recorded:
    """One poll: what was stored (``result``), or the error it ran into and rode out."""

    number: int
    result: RecordResult | None
    rates: dict[str, float] | None
    error: str | None = None
    rates_note: str | None = None


class Rates:
    """USD rates from ``spot_marketplace``, fetched at most once per ``every`` seconds."""

    def __init__(self, client: MarketClient, every: float = RATES_EVERY) -> None:
        self.client = client
        self.every = every
        self.value: dict[str, float] | None = None
        self.note: str | None = None
        self._at = -math.inf

    def get(self, servers: Sequence[Server], now: float) -> dict[str, float] | None:
        """The current rates (refreshed when older than ``every``); None when unknown."""
        if now - self._at < self.every:
            return self.value
        self._at = now
        if not servers:
            return self.value
        target = next((s for s in servers if not s.rented), servers[0])
        try:
            spot = self.client.spot_marketplace(target.id)
        except CloreError as exc:
            self.note = f"no USD rates: spot_marketplace failed: {exc}"
            return self.value
        rates = {k: float(v) for k, v in spot.currency_rates_in_usd.items() if v}
        self.value = rates or self.value
        self.note = None if rates else "no USD rates: spot_marketplace returned none"
        return self.value


def _server_now(client: Any, clock: Clock) -> float:
    server_time = getattr(client, "server_time", None)
    return float(server_time()) if callable(server_time) else clock.time()


def record_once(
    client: MarketClient, store: HistoryStore, clock: Clock, rates: Rates | None = None
) -> tuple[RecordResult, dict[str, float] | None]:
    """Fetch the listing (and rates when due) and store it; returns what was stored."""
    servers = list(client.marketplace())
    at = _server_now(client, clock)
    table = rates.get(servers, clock.time()) if rates is not None else None
    return store.record(servers, at=at, rates=table), table


def record_loop(
    client: MarketClient,
    store: HistoryStore,
    *,
    clock: Clock,
    interval: float = 300.0,
    count: int | None = None,
    duration: float | None = None,
    rates_every: float | None = RATES_EVERY,
) -> Iterator[Recorded]:
    """Record every ``interval`` seconds, ``count`` times or for ``duration`` seconds (or
    until the caller stops iterating). ``interval`` is at least ``MIN_INTERVAL``;
    ``rates_every`` None records no rates (no key: ``spot_marketplace`` needs one)."""
    if not interval >= MIN_INTERVAL:
        raise HistoryError(f"interval: at least {MIN_INTERVAL:.0f} s (the API's advice)")
    if count is not None and count < 1:
        raise HistoryError("count: at least 1")
    rates = Rates(client, rates_every) if rates_every is not None else None
    start = clock.time()
    polls = 0
    slot = 0
    while count is None or polls < count:
        due = start + slot * interval
        if duration is not None and due - start >= duration:
            return
        wait = due - clock.time()
        if wait > 0:
            clock.sleep(wait)
        polls += 1
        try:
            result, table = record_once(client, store, clock, rates)
        except _RIDE_OUT as exc:
            known = rates.value if rates is not None else None
            yield Recorded(polls, None, known, error=f"{type(exc).__name__}: {exc}")
        else:
            yield Recorded(polls, result, table, rates_note=rates.note if rates else None)
        # The next slot still ahead: a poll that overran its slot skips the missed ones.
        slot = max(slot + 1, math.ceil((clock.time() - start) / interval))
