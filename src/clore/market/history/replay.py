"""Reading the past: the market at any recorded moment, and series over time.

A ``Timeline`` replays the change rows of the selected servers from a snapshot on, keeping
each server's current row, and reduces the listings to ``stats.Listing`` at the moments
asked for (each one at its snapshot's rates). Servers are first narrowed by their terms
(the exact model and the filters on terms, checked once per set of terms), so a series
for one model reads only that model's rows.

* ``stats_at``: the market at the last snapshot at or before a time, with the clearing
  prices of the ``window`` before it.
* ``series``: time buckets from ``since`` to ``until``; each point is the market at the
  **last snapshot in its bucket** (listed, available, prices) plus the clearing events of
  all the bucket's snapshots. Buckets are aligned on multiples of their length (UTC).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from clore.market.filters import compile_filters
from clore.market.history.rows import (
    ONLINE,
    RENTED,
    SERVER,
    SNAP,
    STATIC,
    NoHistoryError,
    Row,
    Snapshot,
    build_server,
    column_price,
    rate_table,
)
from clore.market.history.stats import (
    Listing,
    ModelStats,
    Selection,
    summarize,
)
from clore.market.history.store import HistoryStore
from clore.market.pricing import USD, PriceContext

if TYPE_CHECKING:
    from clore._wire import Server

__all__ = [
    "BUCKETS",
    "MarketStats",
    "Series",
    "SeriesPoint",
    "Timeline",
    "auto_bucket",
    "listings_of",
    "series",
    "stats_at",
]

#: Bucket lengths ``auto_bucket`` chooses from (seconds).
BUCKETS: Final = (300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)
MAX_POINTS: Final = 100


def auto_bucket(span: float, points: int = MAX_POINTS) -> int:
    """The shortest bucket of ``BUCKETS`` giving at most ``points`` points over ``span``."""
    for bucket in BUCKETS:
        if span / bucket <= points:
            return bucket
    return BUCKETS[-1]


@dataclass(frozen=True)
class MarketStats:
    """The market at one snapshot: per model and in total, in ``currency`` and USD."""

    at: float
    snapshot: int
    currency: str
    rates: dict[str, float] | None
    window: float
    selection: Selection
    models: list[ModelStats]
    total: ModelStats


@dataclass(frozen=True)
class SeriesPoint:
    """One bucket: starting at ``t``, sampled at snapshot time ``at``."""

    t: float
    at: float
    stats: ModelStats


@dataclass(frozen=True)
class Series:
    """A series of points for the selection, in ``currency`` per GPU-day (and USD)."""

    currency: str
    since: float
    until: float
    bucket: int
    selection: Selection
    models: list[str]
    points: list[SeriesPoint]


Clears = list[Listing]


@dataclass(frozen=True)
class _Pricing:
    snapshot: int
    rates: int  # an id per distinct rate table: rows reduced at equal rates are reused
    table: dict[str, float]
    ctx: PriceContext


class Timeline:
    """Replays the selected servers' change rows; see the module docstring."""

    def __init__(self, store: HistoryStore, selection: Selection, currency: str) -> None:
        self.store = store
        self.selection = selection
        self.currency = currency
        self._volatile = selection.volatile_filters
        statics = store.statics()
        static_filters = selection.static_filters
        terms_ctx = PriceContext(currency)
        # static id -> (model, host, gpus) of the selected terms
        self.terms: dict[int, tuple[str, int, int]] = {}
        for sid, info in statics.items():
            if not selection.model_matches(info.model):
                continue
            if static_filters:
                record = store.static_record(sid)
                if not compile_filters(static_filters, terms_ctx)(record):
                    continue
            self.terms[sid] = (info.model, info.host, info.gpus)
        self.servers: set[int] | None = {statics[s].server for s in self.terms}
        if selection.model is None and not static_filters:
            self.servers = None  # everything: no need to narrow the queries
        self._pricing: _Pricing | None = None
        self._rate_ids: dict[tuple[tuple[str, float], ...], int] = {}
        self._built: dict[tuple[int, int], Server] = {}
        self._kept: dict[tuple[int, int, int], bool] = {}

    def _keep(self, row: Row, pricing: _Pricing) -> bool:
        """Whether the volatile filters keep a row at ``pricing``'s rates (cached)."""
        key = (row[SERVER], row[SNAP], pricing.rates)
        kept = self._kept.get(key)
        if kept is None:
            server = self._built.get(key[:2])
            if server is None:
                server = build_server(row, self.store.static_record(row[STATIC]))
                self._built[key[:2]] = server
            kept = compile_filters(self._volatile, pricing.ctx)(server)
            self._kept[key] = kept
        return kept

    def _listing(self, row: Row, pricing: _Pricing) -> Listing | None:
        """The row as a ``Listing`` at ``pricing``'s rates; None when a filter drops it."""
        if self._volatile and not self._keep(row, pricing):
            return None
        model, host, gpus = self.terms[row[STATIC]]
        day = self._price(row, self.currency, pricing.table)
        usd = self._price(row, USD, pricing.table)
        return Listing(
            row[SERVER],
            model,
            host,
            gpus,
            bool(row[RENTED]),
            day / gpus if day is not None and gpus else None,
            usd / gpus if usd is not None and gpus else None,
        )

    def _price(self, row: Row, target: str, table: dict[str, float]) -> float | None:
        return column_price(row, target, self.currency, table)

    def pricing(self, snapshot: Snapshot) -> _Pricing:
        """How to read prices at a snapshot: the chosen currency at its rates."""
        if self._pricing is None or self._pricing.snapshot != snapshot.id:
            rates = snapshot.rates
            key = tuple(sorted(rates.items())) if rates else ()
            rate_id = self._rate_ids.setdefault(key, len(self._rate_ids))
            self._pricing = _Pricing(
                snapshot.id, rate_id, rate_table(rates), PriceContext(self.currency, rates)
            )
        return self._pricing

    def listings(self, state: dict[int, Row], snapshot: Snapshot) -> list[Listing]:
        """The listed, selected servers of ``state`` reduced at ``snapshot``."""
        pricing = self.pricing(snapshot)
        out: list[Listing] = []
        terms = self.terms
        for row in state.values():
            if row[ONLINE] and row[STATIC] in terms:
                item = self._listing(row, pricing)
                if item is not None:
                    out.append(item)
        return out

    def run(
        self,
        snapshots: list[Snapshot],
        visit: Callable[[Snapshot, dict[int, Row], Clears], None],
    ) -> None:
        """Replay ``snapshots`` (consecutive, in order), calling ``visit`` after each with
        the state and the servers that went from available to rented in it."""
        if not snapshots:
            return
        first, last = snapshots[0], snapshots[-1]
        state = self.store.state_at(first.id - 1, self.servers)
        rows = self.store.changes(first.id - 1, last.id, self.servers)
        i = 0
        for snapshot in snapshots:
            clears: Clears = []
            while i < len(rows) and rows[i][SNAP] == snapshot.id:
                row = rows[i]
                i += 1
                before = state.get(row[SERVER])
                state[row[SERVER]] = row
                if (
                    before is not None
                    and before[ONLINE]
                    and not before[RENTED]
                    and row[ONLINE]
                    and row[RENTED]
                    and before[STATIC] in self.terms
                ):
                    item = self._listing(before, self.pricing(snapshot))
                    if item is not None:
                        clears.append(item)
            visit(snapshot, state, clears)


def stats_at(
    store: HistoryStore,
    selection: Selection,
    *,
    at: float | None = None,
    currency: str = "bitcoin",
    window: float = 86400.0,
) -> MarketStats:
    """The market at the last snapshot at or before ``at`` (default: the latest), with the
    clearing prices of the ``window`` seconds before it. ``NoHistoryError`` without one."""
    target = store.last_snapshot() if at is None else store.snapshot_at(at)
    if target is None:
        raise NoHistoryError("no snapshot recorded" + ("" if at is None else " by then"))
    snapshots = store.snapshots(target.t - window, target.t) if window > 0 else [target]
    timeline = Timeline(store, selection, currency)
    clears: Clears = []
    final: dict[int, Row] = {}

    def visit(snapshot: Snapshot, state: dict[int, Row], cleared: Clears) -> None:
        if snapshot.t > target.t - window or window <= 0:
            clears.extend(cleared)
        if snapshot.id == target.id:
            final.update(state)

    timeline.run(snapshots, visit)
    models, total = summarize(timeline.listings(final, target), clears)
    return MarketStats(
        at=target.t,
        snapshot=target.id,
        currency=currency,
        rates=dict(target.rates) if target.rates else None,
        window=window,
        selection=selection,
        models=models,
        total=total,
    )


def _bucketed(
    store: HistoryStore,
    selection: Selection,
    since: float,
    until: float,
    bucket: int,
    currency: str,
    sample: Callable[[float, Snapshot, list[Listing], Clears], None],
) -> Timeline:
    snapshots = store.snapshots(since, until)
    if not snapshots:
        raise NoHistoryError("no snapshot recorded in that period")
    timeline = Timeline(store, selection, currency)
    ends = _bucket_ends(snapshots, bucket)
    pending: Clears = []

    def visit(snapshot: Snapshot, state: dict[int, Row], cleared: Clears) -> None:
        pending.extend(cleared)
        if snapshot.id in ends:
            start = math.floor(snapshot.t / bucket) * bucket
            sample(start, snapshot, timeline.listings(state, snapshot), list(pending))
            pending.clear()

    timeline.run(snapshots, visit)
    return timeline


def _bucket_ends(snapshots: list[Snapshot], bucket: int) -> set[int]:
    """Ids of the last snapshot of each bucket."""
    last: dict[int, int] = {}
    for snapshot in snapshots:
        last[math.floor(snapshot.t / bucket)] = snapshot.id
    return set(last.values())


def series(
    store: HistoryStore,
    selection: Selection,
    *,
    since: float,
    until: float | None = None,
    bucket: int | None = None,
    currency: str = "bitcoin",
) -> Series:
    """Points from ``since`` to ``until`` (default: the latest snapshot); see the module."""
    last = store.last_snapshot()
    if last is None:
        raise NoHistoryError("no snapshot recorded")
    end = last.t if until is None else min(until, last.t)
    if end < since:
        raise NoHistoryError("no snapshot recorded in that period")
    step = bucket or auto_bucket(end - since)
    points: list[SeriesPoint] = []
    models: set[str] = set()

    def sample(start: float, snapshot: Snapshot, items: list[Listing], clears: Clears) -> None:
        models.update(item.model for item in items)
        _, total = summarize(items, clears, by_model=False)
        points.append(SeriesPoint(t=start, at=snapshot.t, stats=total))

    _bucketed(store, selection, since, end, step, currency, sample)
    return Series(
        currency=currency,
        since=since,
        until=end,
        bucket=step,
        selection=selection,
        models=sorted(models),
        points=points,
    )


def listings_of(
    servers: Iterable[Server], selection: Selection, ctx: PriceContext
) -> list[Listing]:
    """A live listing (what ``marketplace()`` returned) reduced like recorded ones."""
    match = selection.predicate(ctx)
    return [Listing.of(s, ctx) for s in servers if match(s)]
