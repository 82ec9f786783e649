"""What to rent and what a rental may cost: ``RentSpec``, ``Limits`` and the budget rule.

The budget rule (used by ``watch --budget``)::

    planned duration d = min(max_time, server mrl)   when --max-time is given
                       = server mrl                  otherwise (the longest the order can run)
    planned cost       = price per day × d / 86400, at most --max-spend when that is given
    a rental is made only if (sum of planned costs of this watch's rentals) + cost <= budget

``--until``/``--for`` do not shorten d: they end the *watching*, not the rentals, so a cost
computed from them would not bound what is actually spent. ``--max-time`` and
``--max-spend`` do bound it because the loops (and ``clore guard``) cancel an order that
crosses them. Amounts are in the order's currency; creation fees are not included.
"""

from __future__ import annotations

import math
from typing import Literal, TypedDict

import msgspec

from clore._validate import preview_create_order
from clore._wire import CreateOrderRequest, Order, RenterFees, Server
from clore.workflows._protocols import SupportsCreateOrder

__all__ = [
    "Limits",
    "OrderArguments",
    "RentSpec",
    "burn_per_day",
    "planned_cost",
    "planned_seconds",
    "round_price",
]

OrderType = Literal["on-demand", "spot"]


def round_price(value: float, *, up: bool = False) -> float:
    """Round a per-day price to the API's 8 decimals (``up`` rounds towards +inf)."""
    scaled = value * 1e8
    # Guard against binary noise (0.1 + 0.2 style) before rounding in a direction.
    nearest = round(scaled)
    if abs(scaled - nearest) < 1e-6:
        return nearest / 1e8
    return (math.ceil(scaled) if up else math.floor(scaled)) / 1e8


class OrderArguments(TypedDict):
    """The keyword arguments of ``create_order`` (and ``preview_create_order``)."""

    server_id: int
    image: str
    order_type: OrderType
    currency: str
    spotprice: float | None
    ports: dict[str, str] | None
    ssh_password: str | None
    ssh_key: str | None
    jupyter_token: str | None
    env: dict[str, str] | None
    command: str | None
    required_price: float | None
    autossh_entrypoint: bool | None


class RentSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything ``create_order`` needs besides the server and the price.

    ``lock_price`` (the default) sends an on-demand order's price as ``required_price``,
    so the API refuses it when the listing moved since it was seen.
    """

    image: str
    order_type: OrderType = "on-demand"
    currency: str = "bitcoin"
    ports: dict[str, str] | None = None
    env: dict[str, str] | None = None
    ssh_password: str | None = None
    ssh_key: str | None = None
    jupyter_token: str | None = None
    command: str | None = None
    autossh_entrypoint: bool | None = None
    lock_price: bool = True

    @property
    def spot(self) -> bool:
        return self.order_type == "spot"

    def price_of(self, server: Server) -> float | None:
        """What renting ``server`` costs per day: on-demand price, or the spot minimum."""
        if not server.accepts(self.currency):
            return None
        return server.price_per_day(self.currency, spot=self.spot)

    def arguments(self, server_id: int, price: float | None) -> OrderArguments:
        """``create_order``'s arguments for ``server_id``: a spot bid of ``price`` per day,
        or an on-demand order at ``price`` (sent as ``required_price`` with ``lock_price``)."""
        return OrderArguments(
            server_id=server_id,
            image=self.image,
            order_type=self.order_type,
            currency=self.currency,
            spotprice=price if self.spot else None,
            ports=self.ports,
            ssh_password=self.ssh_password,
            ssh_key=self.ssh_key,
            jupyter_token=self.jupyter_token,
            env=self.env,
            command=self.command,
            # Spot bids have no fixed price to lock; the bid itself is the price.
            required_price=None if self.spot or not self.lock_price else price,
            autossh_entrypoint=self.autossh_entrypoint,
        )

    def create(self, client: SupportsCreateOrder, server_id: int, price: float | None) -> Order:
        """Rent ``server_id`` on demand (``required_price=price`` with ``lock_price``), or bid
        ``price`` on spot."""
        return client.create_order(**self.arguments(server_id, price))

    def preview(self, server_id: int, price: float | None) -> CreateOrderRequest:
        """Exactly the body ``create`` would send (``clore.preview_create_order``); nothing
        is sent. Bad settings raise ``clore.ParameterError``, as ``create`` would."""
        return preview_create_order(**self.arguments(server_id, price))


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-order limits: ``max_spend`` in the order's currency, ``max_time`` in seconds."""

    max_spend: float | None = None
    max_time: float | None = None

    def __bool__(self) -> bool:
        return self.max_spend is not None or self.max_time is not None


def planned_seconds(server: Server, *, max_time: float | None = None) -> float | None:
    """Planned rental duration on ``server`` (see the module docstring); None when unknown."""
    mrl = float(server.mrl) * 3600.0  # marketplace mrl is hours
    if max_time is not None:
        return min(max_time, mrl) if mrl > 0 else max_time
    return mrl if mrl > 0 else None


def planned_cost(
    price_per_day: float,
    seconds: float | None,
    *,
    max_spend: float | None = None,
) -> float | None:
    """Planned cost of one rental in its currency; None when the duration is unknown."""
    cost = None if seconds is None else price_per_day * seconds / 86400.0
    if max_spend is not None:
        return max_spend if cost is None else min(cost, max_spend)
    return cost


def burn_per_day(order: Order, fees: RenterFees | None = None) -> float:
    """What ``order`` takes from its wallet per day: its price plus the renter fee (10%
    on demand, 2.5% spot, as ``renter_fees`` reports), which is debited on top of ``spend``."""
    percent = 0.0
    if fees is not None:
        percent = fees.fee_percent("spot" if order.spot else "on-demand", order.currency)
    return float(order.price) * (1.0 + percent / 100.0)
