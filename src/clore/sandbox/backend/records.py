"""Domain records the backend and the store exchange, and the views handed to handlers.

Records are plain mutable msgspec Structs: the store fills them from rows and writes them
back; the backend changes them in between. Prices are per day; ``ServerRec.mrl`` is in
hours and ``OrderRec.mrl`` in seconds, as the API reports them.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

__all__ = [
    "MarketplaceView",
    "OrderRec",
    "OrderView",
    "ServerRec",
    "SpotMarketView",
    "User",
    "WalletRec",
]


class User(Struct):
    """An account: renters, hosts, the demo user and the market stand-in (``kind``)."""

    id: int
    name: str
    api_key: str | None
    kind: str  # "demo" | "user" | "market"
    created: float


class WalletRec(Struct):
    """One currency wallet of a user; ``balance`` is what is left after billed charges."""

    user_id: int
    currency: str
    balance: float
    deposit: str
    withdrawal_fee: float


class ServerRec(Struct):
    """A hosted server. ``record`` is its marketplace JSON as seeded (static fields)."""

    id: int
    owner: int
    name: str
    pos: int
    record: bytes
    mrl: float  # hours
    on_demand: dict[str, float]
    spot: dict[str, float]
    allowed_coins: list[str]
    rented: bool = False
    visible: bool = True
    online: bool = True
    end_outbid: bool = False
    cluster: str = ""
    rev: int = 0

    @property
    def listed(self) -> bool:
        """True when the marketplace shows the server (public and online)."""
        return self.visible and self.online


class OrderRec(Struct):
    """An on-demand order or a spot offer (``spot``); ``price`` is the per-day price or bid.

    ``billing`` is true while the order accrues charges (running, active, server online);
    ``spend`` and the wallet are charged up to ``billed_until``.
    """

    id: int
    user_id: int
    server_id: int
    spot: bool
    currency: str
    price: float
    fee_rate: float
    image: str
    ct: float
    mrl: float  # seconds
    end_at: float
    creation_fee: float
    billed_until: float
    ports: dict[str, str] = field(default_factory=dict)
    spend: float = 0.0
    ended: bool = False
    ended_at: float | None = None
    end_reason: str | None = None
    issue: str | None = None
    billing: bool = False
    active: bool = False
    ready_at: float | None = None
    provisioned: bool = False
    pub_cluster: list[str] = field(default_factory=list)
    tcp_ports: list[str] = field(default_factory=list)
    http_port: str | None = None
    http_pub: str | None = None
    last_lowered: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Wallet debit per second while billing: the price plus the renter fee."""
        return self.price * (1.0 + self.fee_rate) / 86400.0


class OrderView(Struct):
    """An order as ``my_orders`` shows it at ``now``: spend includes unbilled running time."""

    order: OrderRec
    server: ServerRec
    spend: float
    online: bool


class SpotMarketView(Struct):
    """``spot_marketplace`` of one server: live offers (with ``mine`` flags) and the server."""

    server: ServerRec
    offers: list[tuple[OrderRec, bool]]


class MarketplaceView(Struct):
    """What changed in the marketplace since ``since``: servers to re-encode, or all of them.

    ``full`` means the caller's cache is unusable (reset, first call) and ``changed`` holds
    every server; otherwise ``changed`` holds the servers whose listing changed.
    """

    rev: int
    full: bool
    changed: list[ServerRec]
    my_servers: list[int]
