"""What a job costs and when it must stop: spend plus fees, the age limit, idle GPUs.

Money (in the order's currency): an order's **cost** is its ``spend`` (the API's figure:
price × running time) plus the renter fee on it (``renter_fees``: 10 % on demand, 2.5 %
spot, debited on top of ``spend``) plus its ``creation_fee`` once it has run
``FREE_WINDOW`` seconds (an order ended sooner pays none). An order the job adopted
(``order_id``) counts from the spend it had when adopted, and its creation fee is not
the job's. A job's cost is the sum over every order it used (recoveries rent again).

``max_spend`` is checked one poll ahead, as the guard does: the projected cost at the next
check (``price × (1 + fee) × lookahead``), the creation fee counted from the start for an
order the job created, so the limit is not overshot by the polling gap. ``max_time`` is
server seconds since the job's first order was created (its ``ct``), also one poll ahead.

Idle: the highest GPU utilization (``nvidia-smi`` over SSH) below ``threshold`` percent in
every sample for ``seconds`` of server time; one busy sample starts the count again.
"""

from __future__ import annotations

from dataclasses import dataclass

from clore._wire import Order
from clore.rentals.verify.settle import FREE_WINDOW

__all__ = ["IdleTracker", "OrderCost", "order_cost", "projected_cost"]

_EPS = 1e-9


@dataclass(frozen=True)
class OrderCost:
    """One order's ``spend`` and ``fees`` (renter fee + creation fee) for the job."""

    spend: float
    fees: float

    @property
    def total(self) -> float:
        return self.spend + self.fees


def order_cost(
    order: Order,
    now: float,
    *,
    fee_percent: float,
    created: bool,
    spend_base: float = 0.0,
) -> OrderCost:
    """What ``order`` has cost the job by server time ``now`` (module docstring)."""
    spend = max(0.0, float(order.spend) - spend_base)
    fees = spend * fee_percent / 100.0
    if created and now - float(order.ct) >= FREE_WINDOW:
        fees += float(order.creation_fee)
    return OrderCost(spend, fees)


def projected_cost(
    order: Order,
    now: float,
    lookahead: float,
    *,
    fee_percent: float,
    created: bool,
    spend_base: float = 0.0,
) -> float:
    """The order's cost to the job by ``now + lookahead`` (server seconds), its creation
    fee counted from the start when the job created it."""
    running = max(0.0, float(order.spend) - spend_base)
    running += float(order.price) * max(0.0, lookahead) / 86400.0
    total = running * (1.0 + fee_percent / 100.0)
    if created:
        total += float(order.creation_fee)
    return total


def reached(value: float, limit: float) -> bool:
    """True when ``value`` has reached ``limit`` (up to float noise)."""
    return value >= limit - _EPS * abs(limit)


class IdleTracker:
    """Counts how long the GPUs stay below ``threshold`` percent (server seconds)."""

    def __init__(self, seconds: float, threshold: float) -> None:
        self.seconds = seconds
        self.threshold = threshold
        self.since: float | None = None
        self.last: float | None = None

    def sample(self, utilization: list[float], now: float) -> float | None:
        """Record one reading at server time ``now``; the idle seconds once they reach
        ``seconds`` (else None). An empty reading (no GPU) counts as idle."""
        highest = max(utilization, default=0.0)
        self.last = highest
        if highest >= self.threshold:
            self.since = None
            return None
        if self.since is None:
            self.since = now
        idle = now - self.since
        return idle if reached(idle, self.seconds) else None
