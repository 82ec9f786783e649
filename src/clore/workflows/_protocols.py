"""What the workflows need from a client: the few ``clore.Clore`` methods each one calls.

Typing the client as a Protocol lets tests pass a small fake, and lets the workflows run on
anything shaped like ``clore.Clore`` (a client bound to the sandbox, a wrapper that logs).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from clore._facts import CurrencyName, OrderTypeName
from clore._wire import Order, RenterFees, Server, SpotMarket, Wallet

__all__ = [
    "GuardClient",
    "KeeperClient",
    "MonitorClient",
    "SupportsCancel",
    "SupportsCreateOrder",
    "SupportsMarketplace",
    "SupportsMyOrders",
    "SupportsRenterFees",
    "SupportsServerTime",
    "SupportsSpot",
    "SupportsWallets",
    "WatchClient",
]


@runtime_checkable
class SupportsServerTime(Protocol):
    """A client that knows the API server's clock (``clore.Clore`` does; see
    ``clore.workflows._time``, which falls back to the loop's clock for others)."""

    def server_time(self) -> float: ...

    @property
    def time_scale(self) -> float: ...


class SupportsMarketplace(Protocol):
    def marketplace(self) -> list[Server]: ...


class SupportsMyOrders(Protocol):
    def my_orders(self, include_completed: bool = False) -> list[Order]: ...


class SupportsWallets(Protocol):
    def wallets(self) -> list[Wallet]: ...


class SupportsRenterFees(Protocol):
    def renter_fees(self) -> RenterFees: ...


class SupportsCancel(Protocol):
    def cancel_order(self, order_id: int, issue: str | None = None) -> None: ...


class SupportsSpot(Protocol):
    def spot_marketplace(self, server_id: int) -> SpotMarket: ...

    def set_spot_price(self, order_id: int, price: float) -> None: ...


class SupportsCreateOrder(Protocol):
    def create_order(
        self,
        server_id: int,
        image: str,
        order_type: OrderTypeName = "on-demand",
        currency: CurrencyName = "bitcoin",
        spotprice: float | None = None,
        ports: dict[str, str] | None = None,
        ssh_password: str | None = None,
        ssh_key: str | None = None,
        jupyter_token: str | None = None,
        env: dict[str, str] | None = None,
        command: str | None = None,
        required_price: float | None = None,
        autossh_entrypoint: bool | None = None,
    ) -> Order: ...


class WatchClient(
    SupportsMarketplace, SupportsMyOrders, SupportsCreateOrder, SupportsCancel, Protocol
):
    """What ``watch`` calls."""


class MonitorClient(SupportsMyOrders, SupportsWallets, SupportsRenterFees, SupportsSpot, Protocol):
    """What ``monitor`` calls (``spot_marketplace`` only for spot orders; ``wallets`` and
    ``renter_fees`` only for the runway warning)."""


class GuardClient(SupportsMyOrders, SupportsCancel, SupportsWallets, SupportsRenterFees, Protocol):
    """What ``guard`` calls (``wallets`` and ``renter_fees`` only for the runway warning)."""


class KeeperClient(
    SupportsMarketplace,
    SupportsMyOrders,
    SupportsCreateOrder,
    SupportsCancel,
    SupportsSpot,
    Protocol,
):
    """What the spot keeper calls (marketplace and create_order only to recover)."""
