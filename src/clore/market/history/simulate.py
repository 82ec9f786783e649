"""A plausible recorded past, generated quickly: a market simulation over the real capture.

This is a pure simulation (no sandbox server, no HTTP): it starts from the bundled
3,500-server capture (or any listing) and steps time by ``interval`` for ``days``, writing
each step's changes straight into a ``HistoryStore`` (``record_delta``, one transaction
per simulated day), so 30 days of 5-minute snapshots take seconds, not the hours a
recorder would. Its events are the sandbox market's kinds, with rates chosen to look
like a real GPU market:

* **rentals**: available servers are rented at about ``0.15 × demand`` per hour, where
  demand follows the day (peak 16:00 UTC, trough 04:00; weekends 15 % lower), and a
  renter takes a listing with a probability that falls with its price relative to its
  model's median (cheap servers go first, so the clearing price sits below the median
  ask); rentals last a log-normal time (median 5 h) within the server's ``mrl``;
* **repricing**: about once per 36 h per host and model, the host moves every listing of
  that model by a log-normal factor (σ 6 %), pulled back toward where it started;
* **outages**: about once per 10 days per server, a log-normal time (median 2 h) out of
  the listing, ending any rental;
* **rates**: BTC and CLORE take a random walk in USD (σ 0.15 % and 0.3 % per 5 minutes).

The same ``rng_seed`` gives the same history. The sandbox's own simulation
(``clore sandbox serve --market-activity``) can be recorded too, with ``record_loop``
against it; it is slower (each snapshot is a full listing over the API).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import msgspec

from clore._wire import MarketplaceResponse, Price, decode
from clore.market.history.rows import HistoryError
from clore.market.history.stats import median
from clore.market.models import canonical_model
from clore.market.pricing import USD, PriceContext, server_price

if TYPE_CHECKING:
    from clore._wire import Server
    from clore.market.history.store import HistoryStore

__all__ = ["START_RATES", "Generated", "capture_servers", "generate"]

#: USD rates at the start of a generated history (the sandbox's fixed rates).
START_RATES: Final = {"bitcoin": 68022.87, "CLORE-Blockchain": 0.002705, "USD-Blockchain": 1.0}
_RENT_PER_HOUR: Final = 0.15
_REPRICE_PER_HOUR: Final = 1 / 36
_OUTAGE_PER_HOUR: Final = 1 / 240
_DAY: Final = 86400.0


@dataclass(frozen=True)
class Generated:
    """What ``generate`` wrote: snapshots, change rows, first and last time, servers."""

    snapshots: int
    change_rows: int
    first: float
    last: float
    servers: int


def capture_servers() -> list[Server]:
    """The bundled 2024 capture (the sandbox's default seed), decoded."""
    from clore.sandbox import snapshot_bytes

    response: MarketplaceResponse = decode(snapshot_bytes(), MarketplaceResponse)
    return list(response.servers)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:  # normal approximation: plenty for event counts
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _demand(t: float) -> float:
    hour = (t % _DAY) / 3600.0
    weekday = int(t // _DAY + 3) % 7  # 1970-01-01 was a Thursday: 0 is Monday
    base = 1.0 + 0.45 * math.sin(2 * math.pi * (hour - 10.0) / 24.0)
    return base * (0.85 if weekday >= 5 else 1.0)


def _round(value: float, currency: str) -> float:
    return round(value, 8 if currency == "bitcoin" else 4)


class _Market:
    """The simulated market's state; ``step`` moves it by ``dt`` and says what changed."""

    def __init__(self, servers: Sequence[Server], t: float, rng: random.Random) -> None:
        self.rng = rng
        self.base = {s.id: s for s in servers}
        self.ids = list(self.base)
        self.level = dict.fromkeys(self.base, 1.0)
        self.rented = {s.id for s in servers if s.rented}
        self.offline: set[int] = set()
        self.rates = dict(START_RATES)
        ctx = PriceContext(USD, self.rates)
        usd: dict[int, float] = {}
        for s in servers:
            value = server_price(s, ctx, USD)
            if value is not None and s.gpu_count:
                usd[s.id] = value / s.gpu_count
        self.usd = usd
        by_model: dict[str, list[float]] = defaultdict(list)
        self.model = {s.id: canonical_model(s.specs.gpu) for s in servers}
        for sid, value in usd.items():
            by_model[self.model[sid]].append(value)
        self.reference = {m: median(v) for m, v in by_model.items()}
        self.group: dict[tuple[int | None, str], list[int]] = defaultdict(list)
        for s in servers:
            self.group[(s.owner, self.model[s.id])].append(s.id)
        self.groups = sorted(self.group, key=lambda g: (g[0] is None, g[0] or 0, g[1]))
        self.ends: list[tuple[float, int, int]] = []  # (time, server, version)
        self.version = dict.fromkeys(self.base, 0)
        self.free = [sid for sid in self.base if sid not in self.rented]
        self.slot = {sid: i for i, sid in enumerate(self.free)}
        for sid in sorted(self.rented):
            self._schedule(sid, t + self._rental_seconds(sid) * rng.random())

    # ---- the free list: O(1) draw and removal ------------------------------------------
    def _take(self, sid: int) -> None:
        i = self.slot.pop(sid, None)
        if i is None:
            return
        last = self.free.pop()
        if last != sid:
            self.free[i] = last
            self.slot[last] = i

    def _give(self, sid: int) -> None:
        if sid not in self.slot:
            self.slot[sid] = len(self.free)
            self.free.append(sid)

    def _rental_seconds(self, sid: int) -> float:
        hours = math.exp(self.rng.gauss(math.log(5.0), 1.0))
        mrl = float(self.base[sid].mrl) or 24.0
        return min(hours, mrl) * 3600.0

    def _schedule(self, sid: int, at: float) -> None:
        self.version[sid] += 1
        heapq.heappush(self.ends, (at, sid, self.version[sid]))

    # ---- one step -----------------------------------------------------------------------
    def step(self, t: float, dt: float, activity: float) -> tuple[set[int], list[int]]:
        rng = self.rng
        changed: set[int] = set()
        gone: list[int] = []
        while self.ends and self.ends[0][0] <= t:
            _, sid, version = heapq.heappop(self.ends)
            if version != self.version[sid]:
                continue
            if sid in self.offline:
                self.offline.discard(sid)
                changed.add(sid)
                if sid not in self.rented:
                    self._give(sid)
            elif sid in self.rented:
                self.rented.discard(sid)
                self._give(sid)
                changed.add(sid)
        hours = dt / 3600.0
        wanted = _poisson(rng, _RENT_PER_HOUR * hours * _demand(t) * activity * len(self.free))
        for _ in range(wanted):
            taken = self._draw_renter()
            if taken is not None:
                self.rented.add(taken)
                self._take(taken)
                self._schedule(taken, t + self._rental_seconds(taken))
                changed.add(taken)
        listed = len(self.base) - len(self.offline)
        for _ in range(_poisson(rng, _REPRICE_PER_HOUR * hours * activity * len(self.groups))):
            group = self.group[self.groups[rng.randrange(len(self.groups))]]
            pull = (1.0 / self.level[group[0]]) ** 0.15
            factor = math.exp(rng.gauss(0.0, 0.06)) * pull
            for member in group:
                self.level[member] *= factor
                if member not in self.offline:
                    changed.add(member)
        for _ in range(_poisson(rng, _OUTAGE_PER_HOUR * hours * activity * listed)):
            sid = rng.choice(self.ids)
            if sid in self.offline:
                continue
            self.offline.add(sid)
            self.rented.discard(sid)
            self._take(sid)
            changed.discard(sid)
            gone.append(sid)
            self._schedule(sid, t + math.exp(rng.gauss(math.log(2.0), 0.8)) * 3600.0)
        steps = dt / 300.0
        self.rates["bitcoin"] *= math.exp(rng.gauss(0.0, 0.0015 * math.sqrt(steps)))
        self.rates["CLORE-Blockchain"] *= math.exp(rng.gauss(0.0, 0.003 * math.sqrt(steps)))
        return changed, gone

    def _draw_renter(self) -> int | None:
        """A listing a renter takes: cheaper than its model's median is likelier."""
        rng = self.rng
        for _ in range(20):
            if not self.free:
                return None
            sid = self.free[rng.randrange(len(self.free))]
            price = self.usd.get(sid)
            reference = self.reference.get(self.model[sid])
            if price is None or not reference:
                return sid
            ratio = reference / (price * self.level[sid])
            if rng.random() < min(1.0, 0.5 * ratio * ratio):
                return sid
        return None

    def server(self, sid: int) -> Server:
        base = self.base[sid]
        level = self.level[sid]
        price = Price(
            on_demand={c: _round(float(v) * level, c) for c, v in base.price.on_demand.items()},
            spot={c: _round(float(v) * level, c) for c, v in base.price.spot.items()},
        )
        return msgspec.structs.replace(base, price=price, rented=sid in self.rented)


def generate(
    store: HistoryStore,
    *,
    days: float = 30.0,
    interval: float = 300.0,
    end: float,
    servers: Sequence[Server] | None = None,
    rng_seed: int = 0,
    activity: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> Generated:
    """Write ``days`` of snapshots every ``interval`` seconds, the last at ``end``.

    ``HistoryError`` when the store already holds snapshots from that period or later.
    ``progress(done, total)`` is called after each simulated day.
    """
    if not (days > 0 and interval > 0 and math.isfinite(days) and math.isfinite(interval)):
        raise HistoryError("days and interval must be positive")
    total = int(days * _DAY // interval)
    if total < 1:
        raise HistoryError("days must span at least one interval")
    last_t = math.floor(end / interval) * interval
    first_t = last_t - (total - 1) * interval
    latest = store.last_snapshot()
    if latest is not None and latest.t >= first_t:
        raise HistoryError(
            "the history database already holds snapshots from that period; "
            "use a new file (or --replace)"
        )
    listing = list(servers) if servers is not None else capture_servers()
    rng = random.Random(f"clore-history:{rng_seed}")
    market = _Market(listing, first_t, rng)
    rows = 0
    per_batch = max(1, int(_DAY // interval))
    done = 0
    while done < total:
        with store.batch():
            for _ in range(min(per_batch, total - done)):
                t = first_t + done * interval
                if done == 0:
                    result = store.record(
                        [market.server(s.id) for s in listing], at=t, rates=market.rates
                    )
                else:
                    changed, gone = market.step(t, interval, activity)
                    result = store.record_delta(
                        at=t,
                        changed=[market.server(sid) for sid in sorted(changed)],
                        offline=gone,
                        rates=market.rates,
                    )
                rows += result.changed + result.offline
                done += 1
        if progress is not None:
            progress(done, total)
    return Generated(
        snapshots=total, change_rows=rows, first=first_t, last=last_t, servers=len(listing)
    )
