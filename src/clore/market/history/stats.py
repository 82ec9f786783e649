"""Market statistics over a set of listings: counts, occupancy and price distributions.

The rules (the same for ``stats``, every point of a series and the alert conditions):

* **Population.** Listed servers that match the selection (an exact GPU model and/or
  filter words). *Available* ones are not rented; *occupancy* is rented / listed.
* **Prices** are on-demand asks of the **available** servers, per GPU-day (and per
  GPU-hour: / 24), in the chosen currency as ``clore.market.server_price`` reads them
  (the server's own price in it, else converted at the snapshot's rates), and in USD at
  the same rates.
* **Per host.** A host (the listing's ``owner``; a server without one is its own host)
  contributes **one value: the median of its listings** to p10, median and p90, so forty
  identical listings of one host weigh as one. **min and max are over all listings**
  (the cheapest and dearest you could rent).
* **Percentiles** interpolate linearly between the two nearest ranks (numpy's default):
  ``q`` of sorted ``v[0..n-1]`` is at rank ``q * (n - 1)``.
* **Clearing price**: the ask, just before, of each server that went from available to
  rented between two snapshots; each such event counts once (not per host).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple

from clore.market.filters import Filter, compile_filters, parse_filters
from clore.market.models import canonical_model, matches_model
from clore.market.pricing import USD, PriceContext, server_price

if TYPE_CHECKING:
    from clore._wire import Server

__all__ = [
    "VOLATILE_FIELDS",
    "Listing",
    "ModelStats",
    "PriceStats",
    "Selection",
    "median",
    "quantile",
    "summarize",
]

#: Filter fields whose value moves between snapshots (checked per snapshot, at its rates);
#: the others are a server's terms, checked once per set of terms.
VOLATILE_FIELDS: Final = frozenset(
    {"price", "gpu_price", "spot_price", "reliability", "rating", "spot"}
)


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values, linear between the two nearest ranks."""
    if not ordered:
        raise ValueError("quantile of no values")
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    """The median (the mean of the two middle values for an even count)."""
    return quantile(sorted(values), 0.5)


@dataclass(frozen=True)
class PriceStats:
    """A price distribution per GPU-day: min / p10 / median / p90 / max, and its size."""

    count: int
    hosts: int
    min: float
    p10: float
    median: float
    p90: float
    max: float

    @classmethod
    def per_host(cls, by_host: Mapping[int, Sequence[float]]) -> PriceStats | None:
        """The per-host rule: quantiles over each host's median; min/max over all values."""
        medians = sorted(median(values) for values in by_host.values() if values)
        if not medians:
            return None
        every = [v for values in by_host.values() for v in values]
        return cls(
            count=len(every),
            hosts=len(medians),
            min=min(every),
            p10=quantile(medians, 0.1),
            median=quantile(medians, 0.5),
            p90=quantile(medians, 0.9),
            max=max(every),
        )

    @classmethod
    def of_values(cls, values: Iterable[float], hosts: int | None = None) -> PriceStats | None:
        """Every value counted once (clearing prices)."""
        ordered = sorted(values)
        if not ordered:
            return None
        return cls(
            count=len(ordered),
            hosts=len(ordered) if hosts is None else hosts,
            min=ordered[0],
            p10=quantile(ordered, 0.1),
            median=quantile(ordered, 0.5),
            p90=quantile(ordered, 0.9),
            max=ordered[-1],
        )

    def scaled(self, factor: float) -> PriceStats:
        """The same distribution times ``factor`` (1/24: per GPU-hour)."""
        return PriceStats(
            self.count,
            self.hosts,
            self.min * factor,
            self.p10 * factor,
            self.median * factor,
            self.p90 * factor,
            self.max * factor,
        )


@dataclass(frozen=True)
class Selection:
    """Which listings count: an exact GPU model (``matches_model``) and filter words."""

    model: str | None = None
    filters: tuple[Filter, ...] = ()

    @classmethod
    def parse(cls, words: Iterable[str] = (), model: str | None = None) -> Selection:
        """From filter words (``clore.market.parse_filters``; ``FilterError`` on bad ones)."""
        return cls(model=model or None, filters=tuple(parse_filters(words)))

    @property
    def words(self) -> list[str]:
        """The filter words as typed."""
        return [f.word for f in self.filters]

    @property
    def static_filters(self) -> tuple[Filter, ...]:
        """Filters on a server's terms (GPU, CPU, country, ...)."""
        return tuple(f for f in self.filters if f.field.name not in VOLATILE_FIELDS)

    @property
    def volatile_filters(self) -> tuple[Filter, ...]:
        """Filters on what moves: prices, rating, reliability."""
        return tuple(f for f in self.filters if f.field.name in VOLATILE_FIELDS)

    def model_matches(self, model: str) -> bool:
        """True when a canonical model is in the selection."""
        return self.model is None or matches_model(self.model, model)

    def matches(self, server: Server, ctx: PriceContext) -> bool:
        """True when a listing is in the selection (every filter, at ``ctx``'s rates)."""
        return self.predicate(ctx)(server)

    def predicate(self, ctx: PriceContext) -> Callable[[Server], bool]:
        """``matches`` at ``ctx`` as one function, the filters compiled once (for loops)."""
        compiled = compile_filters(self.filters, ctx)

        def match(server: Server) -> bool:
            return self.model_matches(canonical_model(server.specs.gpu)) and compiled(server)

        return match

    def describe(self) -> str:
        """``model 4090, gpus>=2`` (or ``all servers``) for titles and messages."""
        parts = ([f"model {self.model}"] if self.model else []) + self.words
        return ", ".join(parts) or "all servers"


class Listing(NamedTuple):
    """One listing reduced to what statistics use: model, host, GPUs, rented, asks per GPU."""

    server: int
    model: str
    host: int
    gpus: int
    rented: bool
    price: float | None  # per GPU-day in the chosen currency
    price_usd: float | None

    @classmethod
    def of(cls, server: Server, ctx: PriceContext) -> Listing:
        """Reduce a ``Server`` at ``ctx`` (currency and rates)."""
        gpus = server.gpu_count
        day = server_price(server, ctx)
        usd = server_price(server, ctx, USD)
        return cls(
            server=server.id,
            model=canonical_model(server.specs.gpu),
            host=server.owner if server.owner is not None else -server.id,
            gpus=gpus,
            rented=server.rented,
            price=day / gpus if day is not None and gpus else None,
            price_usd=usd / gpus if usd is not None and gpus else None,
        )


@dataclass(frozen=True)
class ModelStats:
    """Counts and prices of one model (or of the whole selection: ``model`` None)."""

    model: str | None
    listed: int
    available: int
    rented: int
    gpus: int
    gpus_available: int
    price: PriceStats | None
    price_usd: PriceStats | None
    clearing: PriceStats | None = None
    clearing_usd: PriceStats | None = None

    @property
    def occupancy(self) -> float | None:
        """Rented / listed (None with nothing listed)."""
        return self.rented / self.listed if self.listed else None


@dataclass
class _Group:
    listed: int = 0
    rented: int = 0
    gpus: int = 0
    gpus_available: int = 0
    prices: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    usd: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    clearing: list[float] = field(default_factory=list)
    clearing_usd: list[float] = field(default_factory=list)

    def add(self, item: Listing) -> None:
        self.listed += 1
        self.gpus += item.gpus
        if item.rented:
            self.rented += 1
            return
        self.gpus_available += item.gpus
        if item.price is not None:
            self.prices[item.host].append(item.price)
        if item.price_usd is not None:
            self.usd[item.host].append(item.price_usd)

    def clear(self, item: Listing) -> None:
        if item.price is not None:
            self.clearing.append(item.price)
        if item.price_usd is not None:
            self.clearing_usd.append(item.price_usd)

    def stats(self, model: str | None) -> ModelStats:
        return ModelStats(
            model=model,
            listed=self.listed,
            available=self.listed - self.rented,
            rented=self.rented,
            gpus=self.gpus,
            gpus_available=self.gpus_available,
            price=PriceStats.per_host(self.prices),
            price_usd=PriceStats.per_host(self.usd),
            clearing=PriceStats.of_values(self.clearing),
            clearing_usd=PriceStats.of_values(self.clearing_usd),
        )


def summarize(
    listings: Iterable[Listing], clearing: Iterable[Listing] = (), *, by_model: bool = True
) -> tuple[list[ModelStats], ModelStats]:
    """Statistics per model (sorted by name; empty unless ``by_model``) and of everything.

    ``listings`` are the listed servers of one moment; ``clearing`` the listings, as they
    were just before, that went from available to rented in the period of interest.
    """
    total = _Group()
    groups: dict[str, _Group] = defaultdict(_Group)
    for item in listings:
        total.add(item)
        if by_model:
            groups[item.model].add(item)
    for item in clearing:
        total.clear(item)
        if by_model:
            groups[item.model].clear(item)
    models = [groups[name].stats(name) for name in sorted(groups)]
    return models, total.stats(None)
