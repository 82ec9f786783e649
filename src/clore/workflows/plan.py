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

``Limits.parse`` reads limits as people and task files write them (``0.001btc``, ``5usd``,
``8h``), converting a spend in another currency with USD rates; ``LimitError`` names the
limit it could not read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal, TypedDict

import msgspec

from clore._facts import CurrencyName
from clore._validate import preview_create_order, validate_currency
from clore._wire import CreateOrderRequest, Order, RenterFees, Server
from clore.market.pricing import Amount, convert, label, parse_amount
from clore.workflows._protocols import SupportsCreateOrder

__all__ = [
    "LimitError",
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
    currency: CurrencyName
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
            currency=validate_currency(self.currency),
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


class LimitError(ValueError):
    """A limit that cannot be read: ``name`` is ``max_spend`` or ``max_time``, ``reason``
    says why (``str()`` is ``"name: reason"``)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-order limits: ``max_spend`` in the order's currency, ``max_time`` in seconds."""

    max_spend: float | None = None
    max_time: float | None = None

    def __bool__(self) -> bool:
        return self.max_spend is not None or self.max_time is not None

    @classmethod
    def parse(
        cls,
        max_spend: str | float | None,
        max_time: str | float | None,
        currency: str,
        *,
        rates: Mapping[str, float] | None = None,
    ) -> Limits:
        """Limits for an order paid in ``currency``.

        ``max_spend``: a total (``0.001``, ``0.001btc``, ``5usd``; a bare number is in
        ``currency``), converted to ``currency`` with USD ``rates`` when it names another.
        ``max_time``: seconds, or a duration (``90s``, ``15m``, ``8h``, ``1d``, ``1h30m``).
        Both more than zero. ``LimitError`` names the one that cannot be read.
        """
        return cls(
            max_spend=_spend(max_spend, currency, rates),
            max_time=_seconds(max_time),
        )

    @staticmethod
    def spend_currency(max_spend: str | float | None) -> str | None:
        """The currency a spend limit names (None: none, or a bare number): converting it
        to the order's currency may need USD rates. ``LimitError`` when malformed."""
        return None if max_spend is None else _amount(max_spend).currency


def _amount(value: str | float) -> Amount:
    if isinstance(value, int | float):
        return Amount(float(value))
    try:
        amount = parse_amount(value)
    except ValueError as exc:
        raise LimitError("max_spend", str(exc)) from None
    if amount.per_hour:
        raise LimitError("max_spend", "a total amount, not a rate (drop /h)")
    return amount


def _spend(
    value: str | float | None, currency: str, rates: Mapping[str, float] | None
) -> float | None:
    if value is None:
        return None
    amount = _amount(value)
    if not math.isfinite(amount.value) or amount.value <= 0:
        raise LimitError("max_spend", "must be a finite amount greater than zero")
    source = amount.in_currency(currency)
    converted = convert(amount.value, source, currency, rates)
    if converted is None:
        raise LimitError(
            "max_spend",
            f"cannot convert {label(source)} to {label(currency)} without USD rates; "
            f"give the amount in {label(currency)}",
        )
    return converted


def _seconds(value: str | float | None) -> float | None:
    from clore.workflows.render import parse_duration

    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = parse_duration(value)
        except ValueError as exc:
            raise LimitError("max_time", str(exc)) from None
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise LimitError("max_time", "must be a finite duration greater than zero")
    return seconds


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
