"""The GPU models on the market: per exact model (``canonical_model``), how many servers
and GPUs are listed and available, and what a GPU-day costs (``clore gpus``).

The rules:

* A listing's model is ``canonical_model(specs.gpu)`` (``8x NVIDIA GeForce RTX 3090`` is
  ``RTX 3090``), the name ``gpu=`` filters match; a listing without a GPU is ``(no GPU)``.
* **Counts**: ``servers`` listed and ``available`` (not rented); ``gpus`` and
  ``gpus_available`` likewise, by each listing's GPU count.
* **Prices** are per GPU-day (the on-demand price / the GPU count) of the **available**
  servers that take the currency and list a price in it (``payable``): the cheapest and
  the median (the mean of the two middle values for an even count). A server that does
  not take the currency has no price in it. The USD figures are of the same servers, each
  price in USD as ``server_price`` reads it (its own USD price, else converted at the
  rates); None without rates.
* **Order**: by model name, numbers compared as numbers (``RTX 3060`` < ``RTX 3060 Ti`` <
  ``RTX 3070``), or by ``SORT_KEYS``: ``available`` and ``gpus`` most first, ``price``
  and ``median`` cheapest first (unknown last); ties by name.

Pure: no I/O; one pass over the servers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from clore.market.filters import Filter, compile_filters
from clore.market.models import canonical_model, gpu_count
from clore.market.pricing import USD, PriceContext, convert, server_price

if TYPE_CHECKING:
    from clore._wire import Server

__all__ = ["NO_GPU", "SORT_KEYS", "GpuModel", "natural_key", "sort_models", "summarize"]

#: The model of a listing that names no GPU.
NO_GPU: Final = "(no GPU)"

#: ``--sort`` keys of ``clore gpus``.
SORT_KEYS: Final = ("model", "available", "gpus", "price", "median")

_PART_RE: Final = re.compile(r"(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class GpuModel:
    """One model: listed and available servers and GPUs, and the price per GPU-day
    (cheapest, median) of the available servers payable in the currency, and in USD."""

    model: str
    servers: int
    available: int
    gpus: int
    gpus_available: int
    payable: int
    cheapest: float | None
    median: float | None
    cheapest_usd: float | None
    median_usd: float | None

    def to_json(self) -> dict[str, Any]:
        """The ``clore gpus --json`` record (prices per GPU-day)."""
        return {
            "model": self.model,
            "servers": self.servers,
            "servers_available": self.available,
            "gpus": self.gpus,
            "gpus_available": self.gpus_available,
            "servers_payable": self.payable,
            "cheapest_per_gpu_day": self.cheapest,
            "median_per_gpu_day": self.median,
            "cheapest_usd_per_gpu_day": self.cheapest_usd,
            "median_usd_per_gpu_day": self.median_usd,
        }


@dataclass
class _Tally:
    servers: int = 0
    available: int = 0
    gpus: int = 0
    gpus_available: int = 0
    prices: list[float] = field(default_factory=list)
    usd: list[float] = field(default_factory=list)

    def result(self, model: str) -> GpuModel:
        self.prices.sort()
        self.usd.sort()
        return GpuModel(
            model=model,
            servers=self.servers,
            available=self.available,
            gpus=self.gpus,
            gpus_available=self.gpus_available,
            payable=len(self.prices),
            cheapest=self.prices[0] if self.prices else None,
            median=_median(self.prices),
            cheapest_usd=self.usd[0] if self.usd else None,
            median_usd=_median(self.usd),
        )


def _median(ordered: Sequence[float]) -> float | None:
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def summarize(
    servers: Iterable[Server], ctx: PriceContext, filters: Sequence[Filter] = ()
) -> list[GpuModel]:
    """One ``GpuModel`` per model of the ``servers`` matching ``filters`` (rented ones
    too), prices in ``ctx.currency``; in ``natural_key`` order of the model names."""
    match = compile_filters(filters, ctx) if filters else None
    currency = ctx.currency
    # The payment currency's USD factor, once: a server's USD figure is its own
    # USD-Blockchain price when listed, else its price in the currency converted.
    factor = 1.0 if currency == USD else convert(1.0, currency, USD, ctx.rates)
    tallies: dict[str, _Tally] = {}
    # 3,500 listings hold about 330 distinct GPU texts: read each text once.
    seen: dict[str, tuple[_Tally, int]] = {}
    for server in servers:
        if match is not None and not match(server):
            continue
        gpu = server.specs.gpu
        known = seen.get(gpu)
        if known is None:
            model = canonical_model(gpu) or NO_GPU
            tally = tallies.get(model)
            if tally is None:
                tally = tallies[model] = _Tally()
            known = seen[gpu] = (tally, gpu_count(gpu))
        tally, count = known
        tally.servers += 1
        tally.gpus += count
        if server.rented:
            continue
        tally.available += 1
        tally.gpus_available += count
        coins = server.allowed_coins
        if not count or (coins and currency not in coins):
            continue
        table = server.price.on_demand
        day = table.get(currency)
        if day is None:
            continue
        tally.prices.append(float(day) / count)
        own = table.get(USD)
        if own is not None:
            usd: float | None = float(own)
        elif factor is not None:
            usd = float(day) * factor
        else:
            usd = server_price(server, ctx, USD)  # the record's own price.usd, if any
        if usd is not None:
            tally.usd.append(usd / count)
    return sort_models([tally.result(model) for model, tally in tallies.items()], "model")


def natural_key(model: str) -> tuple[tuple[int, float, str], ...]:
    """``RTX 3060`` < ``RTX 3060 Ti`` < ``RTX 3070`` < ``RTX A2000``: words compared
    case-insensitively, numbers as numbers (before words)."""
    parts: list[tuple[int, float, str]] = []
    for word in model.split():
        for piece in _PART_RE.split(word):
            if not piece:
                continue
            if _PART_RE.fullmatch(piece):
                parts.append((0, float(piece), ""))
            else:
                parts.append((1, 0.0, piece.lower()))
    return tuple(parts)


def sort_models(models: Iterable[GpuModel], key: str = "model") -> list[GpuModel]:
    """``models`` in ``key`` order (``SORT_KEYS``); ties, and ``model``, by name."""
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r}: one of {', '.join(SORT_KEYS)}")
    by_name = sorted(models, key=lambda m: natural_key(m.model))
    if key == "model":
        return by_name
    if key in ("available", "gpus"):
        attr = "available" if key == "available" else "gpus_available"
        return sorted(by_name, key=lambda m: -int(getattr(m, attr)))
    attr = "cheapest" if key == "price" else "median"

    def price(m: GpuModel) -> float:
        value = getattr(m, attr)
        return math.inf if value is None else float(value)

    return sorted(by_name, key=price)
