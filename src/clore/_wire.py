"""The one schema of the Clore.ai API v1: msgspec Structs used by the SDK *and* the sandbox.

Reading is tolerant: unknown fields are ignored, missing fields take defaults, numbers
may arrive as strings (decode with ``strict=False``), ``gpu_array`` may be nested lists
with stray spaces and ``gigaspot`` a bool or an object. Fields that the API sends only
on some records default to ``msgspec.UNSET`` so that encoding them (the sandbox does)
leaves them out, exactly as the real API does.

Units matter and differ between endpoints (see ``../shared/clore-api.md``):

* every price is **per day** in the named currency;
* ``Server.mrl`` and ``ServerConfig.mrl`` are **hours**;
* ``Order.mrl`` and ``SpotServer.mrl`` are **seconds**.

The derived helpers (``gpu_count``, ``price_per_hour``, ``max_rental``, ``ssh_endpoint``,
...) are the only place these conversions are written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType, field

__all__ = [
    "CURRENCIES",
    "CURRENCY_ALIASES",
    "CancelOrderRequest",
    "CreateOrderRequest",
    "Envelope",
    "MarketplaceResponse",
    "MyOrdersResponse",
    "MyServer",
    "MyServersResponse",
    "Net",
    "Order",
    "PohBalance",
    "Price",
    "Rating",
    "RenterFees",
    "Server",
    "ServerConfig",
    "ServerConfigRequest",
    "ServerConfigResponse",
    "SetSpotPriceRequest",
    "Specs",
    "SpotMarket",
    "SpotMarketplaceResponse",
    "SpotOffer",
    "SpotServer",
    "UsdPrice",
    "Wallet",
    "WalletsResponse",
    "normalize_currency",
    "parse_gpu",
]

#: The three currency keys the API knows, in the order the API lists them.
CURRENCIES: Final = ("bitcoin", "CLORE-Blockchain", "USD-Blockchain")

#: Short names people type, mapped to the API's currency keys (case-insensitive lookup).
CURRENCY_ALIASES: Final[Mapping[str, str]] = {
    "btc": "bitcoin",
    "bitcoin": "bitcoin",
    "clore": "CLORE-Blockchain",
    "clore-blockchain": "CLORE-Blockchain",
    "usd": "USD-Blockchain",
    "usd-blockchain": "USD-Blockchain",
}

Currency = Literal["bitcoin", "CLORE-Blockchain", "USD-Blockchain"]
Number = int | float

_GPU_RE: Final = re.compile(r"^\s*(\d+)\s*[xX×]\s*(.+?)\s*$")


def normalize_currency(name: str) -> str:
    """Return the API's currency key for ``name`` (``btc``, ``clore``, ``usd`` or a full key).

    Raises ``ValueError`` naming the known currencies when ``name`` is not one of them.
    """
    key = CURRENCY_ALIASES.get(name.strip().lower())
    if key is None:
        known = ", ".join(CURRENCIES)
        raise ValueError(f"unknown currency {name!r}: expected one of {known} (or btc, clore, usd)")
    return key


def parse_gpu(text: str) -> tuple[int, str]:
    """Split a ``specs.gpu`` string like ``"8x NVIDIA GeForce RTX 3090"`` into (8, model).

    A string without a count prefix is one GPU; an empty string is zero GPUs.
    """
    match = _GPU_RE.match(text)
    if match:
        return int(match.group(1)), match.group(2)
    model = text.strip()
    return (1, model) if model else (0, "")


def _flatten_strings(value: Any) -> list[str]:
    """Flatten arbitrarily nested lists of strings, stripping stray whitespace."""
    out: list[str] = []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped:
            out.append(stripped)
    elif isinstance(value, list | tuple):
        for item in value:
            out.extend(_flatten_strings(item))
    return out


def _usd(amount: float | None, currency: str, rates: Mapping[str, float] | None) -> float | None:
    if amount is None:
        return None
    if currency == "USD-Blockchain":
        return float(amount)
    if rates is None or currency not in rates:
        return None
    return float(amount) * float(rates[currency])


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
        tail = self.cpus.split("/")[-1].strip()
        return int(tail) if tail.isdigit() else None

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
        names = _flatten_strings(self.gpu_array) if self.gpu_array is not UNSET else []
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
        """Price per day in ``currency`` (on-demand, or the spot minimum), None if not offered."""
        table = self.price.spot if spot else self.price.on_demand
        amount = table.get(currency)
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
            return _usd(table.get(currency), currency, rates)
        usd = self.price.usd
        if isinstance(usd, UsdPrice):
            on_demand = usd.on_demand_usd or usd.on_demand_btc or usd.on_demand_clore
            own = usd.spot if spot else on_demand
            if own is not None:
                return float(own)
        best: float | None = None
        for cur, amount in table.items():
            value = _usd(amount, cur, rates)
            if value is not None and (best is None or value < best):
                best = value
        return best

    def accepts(self, currency: str) -> bool:
        """True when orders may be paid in ``currency`` (``allowed_coins``; all when unset)."""
        return not self.allowed_coins or currency in self.allowed_coins


class MarketplaceResponse(Struct, frozen=True, gc=False):
    """``GET /v1/marketplace``."""

    servers: list[Server] = []
    my_servers: list[int] = []
    code: int = 0


# --------------------------------------------------------------------------- orders


class Order(Struct, frozen=True, gc=False):
    """One of the caller's orders (``my_orders``). ``mrl`` is in **seconds**; ``price`` per day.

    ``pub_cluster`` and ``tcp_ports`` are lists (the API sends lists; a bare string is
    accepted too). They stay empty until the container is provisioned.
    """

    id: int
    si: int = 0
    mrl: Number = 0
    price: Number = 0
    currency: str = ""
    image: str = ""
    spot: bool = False
    ct: Number = 0
    expired: bool = False
    pub_cluster: list[str] | str = []
    tcp_ports: list[str] | str = []
    http_port: str | int | None = None
    http_pub: str | None = None
    creation_fee: Number = 0
    spend: Number = 0
    online: bool = True
    specs: Specs = field(default_factory=Specs)
    reliability: Number = 0
    owner: int | None = None
    cuda_version: str | Number | None = None
    rating: Rating = field(default_factory=Rating)
    ports: dict[str, str] | UnsetType = UNSET

    # ---- derived helpers -------------------------------------------------------------

    @property
    def server_id(self) -> int:
        """The rented server's id (the API calls it ``si``)."""
        return self.si

    @property
    def max_rental(self) -> timedelta:
        """Maximum rental length (``mrl`` is seconds in ``my_orders``)."""
        return timedelta(seconds=float(self.mrl))

    @property
    def created_at(self) -> datetime:
        """Creation time (``ct``) as an aware UTC datetime."""
        return datetime.fromtimestamp(float(self.ct), tz=timezone.utc)

    @property
    def expires_at(self) -> datetime:
        """When the order ends at the latest: ``ct + mrl``."""
        return datetime.fromtimestamp(float(self.ct) + float(self.mrl), tz=timezone.utc)

    def time_left(self, now: float | None = None) -> timedelta:
        """Time until ``ct + mrl`` (zero for expired orders); ``now`` is unix seconds."""
        if self.expired:
            return timedelta(0)
        current = time.time() if now is None else now
        return timedelta(seconds=max(0.0, float(self.ct) + float(self.mrl) - current))

    @property
    def hosts(self) -> list[str]:
        """``pub_cluster`` as a list of hostnames."""
        return _flatten_strings(self.pub_cluster)

    @property
    def port_map(self) -> dict[int, int]:
        """Container port -> public port, from ``tcp_ports`` ("22:12022")."""
        mapping: dict[int, int] = {}
        for entry in _flatten_strings(self.tcp_ports):
            inner, _, public = entry.partition(":")
            if inner.strip().isdigit() and public.strip().isdigit():
                mapping[int(inner)] = int(public)
        return mapping

    @property
    def ssh_endpoint(self) -> tuple[str, int] | None:
        """(host, public port) for SSH, once the order is provisioned; else None."""
        hosts = self.hosts
        port = self.port_map.get(22)
        if not hosts or port is None:
            return None
        return hosts[0], port

    def ssh_command(self, user: str = "root") -> str | None:
        """The ``ssh`` command line that reaches the container, or None before provisioning."""
        endpoint = self.ssh_endpoint
        if endpoint is None:
            return None
        host, port = endpoint
        return f"ssh {user}@{host} -p {port}"

    @property
    def http_url(self) -> str | None:
        """HTTPS URL of the forwarded ``http`` port (``http_pub``), or None."""
        if not self.http_pub:
            return None
        host = str(self.http_pub)
        return host if host.startswith(("http://", "https://")) else f"https://{host}"

    @property
    def ready(self) -> bool:
        """True when the order runs and is provisioned: it has hosts, and public TCP ports
        or an HTTPS proxy (an order forwarding only an ``http`` port has no TCP ports)."""
        return not self.expired and bool(self.hosts) and bool(self.port_map or self.http_pub)

    @property
    def price_per_hour(self) -> float:
        """Price (or current bid) per hour: ``price`` / 24."""
        return float(self.price) / 24.0


class MyOrdersResponse(Struct, frozen=True, gc=False):
    """``GET /v1/my_orders``."""

    orders: list[Order] = []
    code: int = 0
    limit: int | UnsetType = UNSET


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


# --------------------------------------------------------------------------- wallets, fees


class Wallet(Struct, frozen=True, gc=False):
    """A wallet of the caller. ``balance`` is None on legacy wallets."""

    name: str
    deposit: str | None = None
    balance: Number | None = None
    withdrawal_fee: Number | None = None


class WalletsResponse(Struct, frozen=True, gc=False):
    """``GET /v1/wallets``."""

    wallets: list[Wallet] = []
    code: int = 0


class RenterFees(Struct, frozen=True, gc=False):
    """``GET /v1/renter_fees``: percentage fees and one-off creation fees per order type.

    ``renter_fees`` is {"on_demand": {"base": {currency: percent}}, "spot": {...}};
    ``creation_fees`` is {"on_demand": {currency: amount}, "spot": {...}}.
    """

    renter_fees: dict[str, dict[str, dict[str, Number]]] = {}
    creation_fees: dict[str, dict[str, Number]] = {}
    code: int = 0

    def fee_percent(self, order_type: str, currency: str) -> float:
        """The renter fee in percent for ``order_type`` ("on-demand"/"spot") and ``currency``."""
        table = self.renter_fees.get(order_type.replace("-", "_"), {}).get("base", {})
        return float(table.get(currency, 0))

    def creation_fee(self, order_type: str, currency: str) -> float:
        """The one-off creation fee for ``order_type`` in ``currency``."""
        table = self.creation_fees.get(order_type.replace("-", "_"), {})
        return float(table.get(currency, 0))


class PohBalance(Struct, frozen=True, gc=False):
    """``GET /v1/poh_balance``. Decision: ``{"balance": CLORE amount, "code": 0}``."""

    balance: Number | None = None
    code: int = 0


# --------------------------------------------------------------------------- host side


class MyServer(Struct, frozen=True, gc=False):
    """One of the caller's hosted servers (``my_servers``); older records lack ``id``."""

    name: str = ""
    id: int | None = None
    connected: bool = False
    visibility: str = "hidden"
    pricing: dict[str, Number] = {}
    min_spot_pricing: dict[str, Number] = {}
    online: bool = False
    mrl: Number | UnsetType = UNSET
    specs: Specs | None = None


class MyServersResponse(Struct, frozen=True, gc=False):
    """``GET /v1/my_servers``."""

    servers: list[MyServer] = []
    limit: int | UnsetType = UNSET
    code: int = 0


class ServerConfig(Struct, frozen=True, gc=False):
    """``server_config``'s ``config``. ``mrl`` is in **hours**; ``rental_status`` 0/1/2."""

    name: str = ""
    id: int | None = None
    connected: bool = False
    visibility: str = "hidden"
    pricing: dict[str, Number] = {}
    spot_pricing: dict[str, Number] = {}
    mrl: Number = 0
    online: bool = False
    initialized: bool = True
    rental_status: int = 0
    specs: Specs | None = None

    @property
    def max_rental(self) -> timedelta:
        """Maximum rental length (``mrl`` is hours in ``server_config``)."""
        return timedelta(hours=float(self.mrl))


class ServerConfigResponse(Struct, frozen=True, gc=False):
    """``GET /v1/server_config`` (a GET with a JSON body)."""

    config: ServerConfig | None = None
    creation_completed: bool = True
    code: int = 0


# --------------------------------------------------------------------------- requests


class Envelope(Struct, frozen=True, gc=False):
    """Every response: an integer ``code``; code 6 adds ``error`` and sometimes more."""

    code: int = 0
    error: str | UnsetType = UNSET
    max_step: Number | UnsetType = UNSET
    time_to_lowering: Number | UnsetType = UNSET


class CreateOrderRequest(Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    """``POST /v1/create_order`` body. ``spotprice`` and ``required_price`` are per day."""

    currency: str
    image: str
    renting_server: int
    type: str = "on-demand"
    spotprice: Number | None = None
    ports: dict[str, str] | None = None
    env: dict[str, str] | None = None
    ssh_password: str | None = None
    ssh_key: str | None = None
    jupyter_token: str | None = None
    command: str | None = None
    required_price: Number | None = None
    autossh_entrypoint: bool | None = None
    remember_password: bool | None = None
    dockerhub_auth: Any = None


class CancelOrderRequest(Struct, frozen=True, omit_defaults=True):
    """``POST /v1/cancel_order`` body."""

    id: int
    issue: str | None = None


class SetSpotPriceRequest(Struct, frozen=True):
    """``POST /v1/set_spot_price`` body: the new bid per day."""

    order_id: int
    desired_price: Number


class ServerConfigRequest(Struct, frozen=True):
    """``GET /v1/server_config`` body."""

    server_name: str


def decode(data: bytes, type: type[Any]) -> Any:
    """Decode ``data`` as ``type`` tolerantly (numbers and bools may arrive as strings)."""
    return msgspec.json.decode(data, type=type, strict=False)
