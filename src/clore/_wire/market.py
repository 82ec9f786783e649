"""Marketplace and spot market records: ``Server`` (``mrl`` in hours) and ``SpotMarket``
(``mrl`` in seconds). Prices are per day."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from msgspec import UNSET, Struct, UnsetType, field

from clore._facts import currency_key
from clore._wire.common import Number, ascii_int, flatten_strings, parse_gpu, usd_amount

__all__ = [
    "MarketplaceResponse",
    "Net",
    "Price",
    "Rating",
    "Server",
    "Specs",
    "SpotMarket",
    "SpotMarketplaceResponse",
    "SpotOffer",
    "SpotServer",
    "UsdPrice",
]


# --------------------------------------------------------------------------- marketplace


class Rating(Struct, frozen=True, gc=False):
    """A server's rating: average stars and number of votes."""

    avg: Number = 0
    cnt: int = 0


class Net(Struct, frozen=True, gc=False):
    """Network facts: country code and measured bandwidth in Mbit/s."""

    cc: str = ""
    down: Number = 0
    up: Number = 0


class Specs(Struct, frozen=True, gc=False):
    """Hardware of a server as the marketplace reports it (RAM and VRAM in GB)."""

    mb: str = ""
    cpu: str = ""
    cpus: str = ""
    ram: Number = 0
    disk: str = ""
    disk_speed: Number = 0
    gpu: str = ""
    gpuram: Number = 0
    net: Net = field(default_factory=Net)
    backend_version: int | UnsetType = UNSET
    pcie_rev: int | UnsetType = UNSET
    pcie_width: int | UnsetType = UNSET
    pl: list[Number] | UnsetType = UNSET

    @property
    def gpu_count(self) -> int:
        """Number of GPUs parsed from ``gpu`` ("8x NVIDIA ..." -> 8)."""
        return parse_gpu(self.gpu)[0]

    @property
    def gpu_model(self) -> str:
        """GPU model parsed from ``gpu`` ("8x NVIDIA GeForce RTX 3090" -> "NVIDIA GeForce ...")."""
        return parse_gpu(self.gpu)[1]

    @property
    def cpu_threads(self) -> int | None:
        """Thread count from ``cpus`` ("8/16" -> 16), or None when it cannot be read."""
        return ascii_int(self.cpus.split("/")[-1])

    @property
    def disk_size_gb(self) -> float | None:
        """Disk size in GB parsed from ``disk`` ("Samsung SSD 465.8GB" -> 465.8)."""
        match = re.search(r"([\d.]+)\s*GB\s*$", self.disk)
        if not match:
            return None
        try:
            return float(match.group(1))
        except ValueError:
            return None

    @property
    def disk_model(self) -> str:
        """Disk model with the API's ``x20`` space escapes undone and the size removed."""
        text = re.sub(r"\s*[\d.]+\s*GB\s*$", "", self.disk)
        # The API escapes spaces as "x20" and truncates names, leaving "x2" or "x" tails.
        text = re.sub(r"x2?$", "", text.replace("x20", " "))
        return " ".join(text.split())


class UsdPrice(Struct, frozen=True, gc=False):
    """USD equivalents that newer marketplace records carry under ``price.usd`` (per day)."""

    on_demand_btc: Number | None = None
    on_demand_clore: Number | None = None
    on_demand_usd: Number | None = None
    spot: Number | None = None


class Price(Struct, frozen=True, gc=False):
    """Per-day prices: ``on_demand`` and minimum ``spot``, each {currency: amount}."""

    on_demand: dict[str, Number] = {}
    spot: dict[str, Number] = {}
    usd: UsdPrice | UnsetType = UNSET
    original_usd: Any = UNSET


class Server(Struct, frozen=True, gc=False):
    """One marketplace server. ``mrl`` is in **hours**; prices are **per day**."""

    id: int
    owner: int | None = None
    mrl: Number = 0
    price: Price = field(default_factory=Price)
    rented: bool = False
    specs: Specs = field(default_factory=Specs)
    reliability: Number = 0
    allowed_coins: list[str] = []
    rating: Rating = field(default_factory=Rating)
    cuda_version: str | Number | None = None
    oc: bool | UnsetType = UNSET
    verification: Any = UNSET
    autoprice: Any = UNSET
    gpu_array: Any = UNSET
    gigaspot: bool | dict[str, Any] | UnsetType | None = UNSET

    # ---- derived helpers -------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True when nobody rents the server on demand."""
        return not self.rented

    @property
    def gpu_count(self) -> int:
        """Number of GPUs ("8x NVIDIA GeForce RTX 3090" -> 8)."""
        return self.specs.gpu_count

    @property
    def gpu_model(self) -> str:
        """GPU model without the count prefix."""
        return self.specs.gpu_model

    @property
    def gpu_names(self) -> list[str]:
        """Per-GPU names from ``gpu_array`` (flattened, stripped), else the model repeated."""
        names = flatten_strings(self.gpu_array) if self.gpu_array is not UNSET else []
        return names or [self.gpu_model] * self.gpu_count

    @property
    def country(self) -> str:
        """Two-letter country code of the server."""
        return self.specs.net.cc

    @property
    def cuda(self) -> str:
        """CUDA version as a string ("12.4"), "" when unknown."""
        if self.cuda_version is None:
            return ""
        return str(self.cuda_version)

    @property
    def is_gigaspot(self) -> bool:
        """True when the server takes part in gigaspot (the API sends a bool or an object)."""
        return bool(self.gigaspot) if self.gigaspot is not UNSET else False

    @property
    def max_rental(self) -> timedelta:
        """Maximum rental length (``mrl`` is hours in the marketplace)."""
        return timedelta(hours=float(self.mrl))

    def price_per_day(self, currency: str = "bitcoin", *, spot: bool = False) -> float | None:
        """Price per day in ``currency`` (on-demand, or the spot minimum), None if not offered.

        Args:
            currency: An API key (``"bitcoin"``, ``"CLORE-Blockchain"``,
                ``"USD-Blockchain"``) or an alias (``"btc"``, ``"clore"``, ``"usd"``; any
                case): the one table ``create_order`` reads too (``clore.CurrencyName``).
                An unknown name finds no price (None).
            spot: The spot minimum instead of the on-demand price.
        """
        table = self.price.spot if spot else self.price.on_demand
        amount = table.get(currency_key(currency))
        return None if amount is None else float(amount)

    def price_per_hour(self, currency: str = "bitcoin", *, spot: bool = False) -> float | None:
        """Price per hour in ``currency``: the per-day price / 24."""
        day = self.price_per_day(currency, spot=spot)
        return None if day is None else day / 24.0

    def price_per_gpu_day(self, currency: str = "bitcoin", *, spot: bool = False) -> float | None:
        """Price per GPU per day in ``currency``."""
        day = self.price_per_day(currency, spot=spot)
        if day is None or self.gpu_count == 0:
            return None
        return day / self.gpu_count

    def usd_per_day(
        self,
        rates: Mapping[str, float] | None = None,
        *,
        currency: str | None = None,
        spot: bool = False,
    ) -> float | None:
        """Price per day in USD.

        With ``currency``, that currency's price converted with ``rates`` (currency -> USD per
        unit, as ``spot_marketplace`` returns in ``currency_rates_in_usd``). Without it, the
        record's own ``price.usd`` figure when present, else the cheapest convertible
        currency. None when nothing can be converted.
        """
        table = self.price.spot if spot else self.price.on_demand
        if currency is not None:
            key = currency_key(currency)
            return usd_amount(table.get(key), key, rates)
        usd = self.price.usd
        if isinstance(usd, UsdPrice):
            on_demand = usd.on_demand_usd or usd.on_demand_btc or usd.on_demand_clore
            own = usd.spot if spot else on_demand
            if own is not None:
                return float(own)
        best: float | None = None
        for cur, amount in table.items():
            value = usd_amount(amount, cur, rates)
            if value is not None and (best is None or value < best):
                best = value
        return best

    def accepts(self, currency: str) -> bool:
        """True when orders may be paid in ``currency`` (``allowed_coins``; all when unset)."""
        return not self.allowed_coins or currency_key(currency) in self.allowed_coins


class MarketplaceResponse(Struct, frozen=True, gc=False):
    """``GET /v1/marketplace``."""

    servers: list[Server] = []
    my_servers: list[int] = []
    code: int = 0


# --------------------------------------------------------------------------- spot


class SpotOffer(Struct, frozen=True, gc=False):
    """A bid on a server. ``offer_id`` is the spot order's id; ``bid`` is per day."""

    offer_id: int
    bid: Number = 0
    active: bool = False
    my: bool = False
    currency: str = "bitcoin"


class SpotServer(Struct, frozen=True, gc=False):
    """The server part of ``spot_marketplace``. ``mrl`` is in **seconds** here."""

    min_pricing: dict[str, Number] = {}
    mrl: Number = 0
    visibility: str = "public"
    online: bool = True

    @property
    def max_rental(self) -> timedelta:
        """Maximum rental length (``mrl`` is seconds in ``spot_marketplace``)."""
        return timedelta(seconds=float(self.mrl))


class SpotMarket(Struct, frozen=True, gc=False):
    """Offers on one server, the server's spot terms and USD rates of the currencies."""

    offers: list[SpotOffer] = []
    server: SpotServer = field(default_factory=SpotServer)
    currency_rates_in_usd: dict[str, Number] = {}

    @property
    def winning(self) -> SpotOffer | None:
        """The active (highest) offer, if any."""
        active = [offer for offer in self.offers if offer.active]
        return max(active, key=lambda offer: offer.bid) if active else None


class SpotMarketplaceResponse(Struct, frozen=True, gc=False):
    """``GET /v1/spot_marketplace?market=ID``; ``exists`` is False for an unknown server."""

    market: SpotMarket | None = None
    exists: bool = False
    code: int = 0
