"""Alert conditions on the market and its history, fired once per episode.

A condition is ``METRIC OP VALUE`` (spaces allowed):

* ``METRIC``: ``price`` (the cheapest available ask per GPU-day), ``median`` (the median
  ask, per host), ``available``, ``listed``, ``rented`` (servers) or ``occupancy``
  (rented / listed);
* ``OP``: ``<  <=  >  >=``;
* ``VALUE``: a number (``3``; ``50%`` for occupancy), a price for the price metrics
  (``0.3usd``, ``0.01usd/h``, ``500clore``; bare numbers are in the chosen currency), or
  ``STAT@WINDOW`` (``p10@7d``, ``median@24h``, ``max@30d``; STAT one of ``min p10 median
  p90 max``): that statistic of **the same metric's hourly values** over the recorded
  window (``window_stats``: the series of the selection in 1-hour buckets).

So ``price<p10@7d`` holds when the cheapest ask now is lower than the cheapest ask was
nine hours in ten over the past week (a deal), and ``available>p90@7d`` when more servers
are free than almost ever that week; ``available>3`` when more than three are free.

``check`` is pure: the current ``ModelStats`` (from a live listing: ``summarize`` over
``replay.listings_of``) and, for ``@`` conditions, the window's ``PriceStats``. ``Episodes``
turns a stream of checks into firings: a condition fires when it starts to hold and not
again until it has stopped holding (a new episode). ``HistoryAlert`` puts these together
for a polling loop, refreshing the window statistics at most once per ``refresh`` seconds.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from clore.market.history.replay import listings_of, series
from clore.market.history.rows import HistoryError, NoHistoryError
from clore.market.history.stats import ModelStats, PriceStats, Selection, summarize
from clore.market.history.times import parse_duration
from clore.market.pricing import Amount, PriceContext, convert, parse_amount

if TYPE_CHECKING:
    from clore._wire import Server
    from clore.market.history.store import HistoryStore

__all__ = [
    "METRICS",
    "Condition",
    "Episodes",
    "HistoryAlert",
    "Verdict",
    "check",
    "metric_value",
    "parse_condition",
    "window_stats",
]

Metric = Literal["price", "median", "available", "listed", "rented", "occupancy"]
METRICS: Final[tuple[Metric, ...]] = (
    "price",
    "median",
    "available",
    "listed",
    "rented",
    "occupancy",
)
_PRICE_METRICS: Final = frozenset({"price", "median"})  # they take amounts
_STATS: Final = ("min", "p10", "median", "p90", "max")
_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_RE: Final = re.compile(r"^\s*([a-z]+)\s*(<=|>=|<|>)\s*(\S+)\s*$", re.IGNORECASE)
_BASELINE_RE: Final = re.compile(r"^(min|p10|median|p90|max)@(\S+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    """A parsed condition: metric, operator and a fixed value, a price or a baseline."""

    text: str
    metric: Metric
    op: str
    number: float | None = None
    amount: Amount | None = None
    stat: str | None = None
    window: float | None = None

    @property
    def needs_history(self) -> bool:
        """True for ``STAT@WINDOW`` conditions."""
        return self.stat is not None


def parse_condition(text: str) -> Condition:
    """Parse ``price<p10@7d``, ``available>3``, ``median<=0.3usd``, ``occupancy>80%``."""
    match = _RE.match(text)
    if match is None:
        raise HistoryError(
            f"bad condition {text!r}: expected METRIC OP VALUE, e.g. price<p10@7d or "
            f"available>3 (metrics: {', '.join(METRICS)}; OP: < <= > >=)"
        )
    name, op, raw = match.group(1).lower(), match.group(2), match.group(3)
    if name not in METRICS:
        raise HistoryError(
            f"bad condition {text!r}: unknown metric {name!r} ({', '.join(METRICS)})"
        )
    metric: Metric = name
    baseline = _BASELINE_RE.match(raw)
    if baseline is not None:
        window = parse_duration(baseline.group(2))
        if window <= 0:
            raise HistoryError(f"bad condition {text!r}: the window must be longer than 0")
        return Condition(text, metric, op, stat=baseline.group(1).lower(), window=window)
    if metric in _PRICE_METRICS:
        try:
            return Condition(text, metric, op, amount=parse_amount(raw))
        except ValueError as exc:
            raise HistoryError(f"bad condition {text!r}: {exc}") from None
    scale = 1.0
    if raw.endswith("%"):
        if metric != "occupancy":
            raise HistoryError(f"bad condition {text!r}: % is for occupancy only")
        raw, scale = raw[:-1], 0.01
    try:
        number = float(raw) * scale
    except ValueError:
        raise HistoryError(f"bad condition {text!r}: {raw!r} is not a number") from None
    return Condition(text, metric, op, number=number)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: whether it holds, the value seen and the threshold."""

    condition: Condition
    holds: bool
    value: float | None
    threshold: float | None
    currency: str

    def describe(self) -> str:
        """``price 0.21 < 0.25 (p10@7d)`` for messages."""
        cond = self.condition
        value = "—" if self.value is None else f"{self.value:.6g}"
        limit = "—" if self.threshold is None else f"{self.threshold:.6g}"
        what = f" ({cond.stat}@{cond.text.split('@', 1)[1]})" if cond.stat else ""
        return f"{cond.metric} {value} {cond.op} {limit}{what}: {'yes' if self.holds else 'no'}"


def metric_value(metric: str, stats: ModelStats) -> float | None:
    """A metric of a moment's statistics (None when it has no value, e.g. no asks)."""
    if metric == "price":
        return stats.price.min if stats.price else None
    if metric == "median":
        return stats.price.median if stats.price else None
    if metric == "occupancy":
        return stats.occupancy
    return float(getattr(stats, metric))


def window_stats(
    store: HistoryStore,
    selection: Selection,
    metric: str,
    *,
    since: float,
    until: float,
    currency: str = "bitcoin",
    bucket: int = 3600,
) -> PriceStats | None:
    """The distribution of ``metric``'s values at each ``bucket`` of the recorded period
    (each bucket's last snapshot, as ``series`` samples it); None when there are none."""
    try:
        past = series(store, selection, since=since, until=until, bucket=bucket, currency=currency)
    except NoHistoryError:
        return None
    values = [metric_value(metric, p.stats) for p in past.points]
    return PriceStats.of_values(v for v in values if v is not None)


def check(
    cond: Condition,
    current: ModelStats,
    *,
    currency: str,
    rates: Mapping[str, float] | None = None,
    baseline: PriceStats | None = None,
) -> Verdict:
    """Whether ``cond`` holds for ``current`` (prices in ``currency``, the stats' own).

    A price in another currency is converted at ``rates``; a ``STAT@WINDOW`` condition
    compares with ``baseline``. Without a value or a threshold it does not hold.
    """
    value = metric_value(cond.metric, current)
    threshold: float | None
    if cond.stat is not None:
        threshold = float(getattr(baseline, cond.stat)) if baseline is not None else None
    elif cond.amount is not None:
        amount = cond.amount
        source = amount.in_currency(currency)
        threshold = convert(amount.per_day, source, currency, rates)
    else:
        threshold = cond.number
    holds = value is not None and threshold is not None and _OPS[cond.op](value, threshold)
    return Verdict(cond, holds, value, threshold, currency)


class Episodes:
    """Fires a condition once per episode: when it starts to hold, not while it goes on.

    ``state`` (condition key -> holding) can be saved and passed back after a restart so
    an episode that was already reported is not reported again.
    """

    def __init__(self, state: Mapping[str, bool] | None = None) -> None:
        self.state: dict[str, bool] = dict(state or {})

    def observe(self, key: str, holds: bool) -> bool:
        """Record a check of ``key``; True exactly when this starts a new episode."""
        was = self.state.get(key, False)
        self.state[key] = holds
        return holds and not was


class HistoryAlert:
    """Conditions checked against each live listing a loop fetched, with the history's
    window statistics (refreshed at most every ``refresh`` seconds) and episodes."""

    def __init__(
        self,
        conditions: Iterable[Condition],
        selection: Selection,
        store: HistoryStore | None,
        *,
        currency: str = "bitcoin",
        refresh: float = 3600.0,
        bucket: int = 3600,
        episodes: Episodes | None = None,
    ) -> None:
        self.conditions = list(conditions)
        self.selection = selection
        self.store = store
        self.currency = currency
        self.refresh = refresh
        self.bucket = bucket
        self.episodes = episodes or Episodes()
        self._baselines: dict[tuple[str, float], tuple[float, PriceStats | None]] = {}
        if store is None and any(c.needs_history for c in self.conditions):
            raise HistoryError("a STAT@WINDOW condition needs a history database")

    def _baseline(self, cond: Condition, now: float) -> PriceStats | None:
        if cond.window is None or self.store is None:
            return None
        key = (cond.metric, cond.window)
        cached = self._baselines.get(key)
        if cached is not None and now - cached[0] < self.refresh:
            return cached[1]
        stats = window_stats(
            self.store,
            self.selection,
            cond.metric,
            since=now - cond.window,
            until=now,
            currency=self.currency,
            bucket=self.bucket,
        )
        self._baselines[key] = (now, stats)
        return stats

    def check(
        self, servers: Iterable[Server], *, now: float, rates: Mapping[str, float] | None = None
    ) -> list[tuple[Verdict, bool]]:
        """Each condition's verdict on this listing and whether it fires now."""
        ctx = PriceContext(self.currency, rates)
        _, current = summarize(listings_of(servers, self.selection, ctx), by_model=False)
        out: list[tuple[Verdict, bool]] = []
        for cond in self.conditions:
            verdict = check(
                cond,
                current,
                currency=self.currency,
                rates=rates,
                baseline=self._baseline(cond, now),
            )
            out.append((verdict, self.episodes.observe(cond.text, verdict.holds)))
        return out
