"""Billing arithmetic: charging running orders, lazy balances and when a wallet runs dry.

Charges are settled lazily. An order that ``billing`` accrues ``price / 86400`` of spend
per second (plus the renter fee, debited from its wallet) from ``billed_until`` on; reads
add the unbilled part on the fly, and writes settle it (``accrue``) before anything that
changes an order's rate. A wallet's balance therefore falls linearly between events, so
the moment it reaches zero is computed exactly rather than discovered by polling.
"""

from __future__ import annotations

from collections import defaultdict

from clore.sandbox.backend.records import OrderRec, WalletRec
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import CREATION_FEE_AFTER, DAY

__all__ = [
    "accrue",
    "charge_creation_fee",
    "creation_fee_charged",
    "creation_fee_due",
    "exhaustion_times",
    "lazy_balance",
    "lazy_spend",
    "run_seconds",
    "unbilled",
]

#: ``OrderRec.extra`` keys: seconds the order has run (billed), and whether its creation
#: fee was taken.
RUN_KEY = "run"
FEE_PAID_KEY = "fee_paid"


def accrue(repo: Repository, order: OrderRec, t: float) -> None:
    """Charge ``order`` for its running time up to ``t`` (the caller saves the order)."""
    if t <= order.billed_until:
        return
    if order.billing:
        amount = order.price * (t - order.billed_until) / DAY
        order.spend += amount
        repo.debit(order.user_id, order.currency, amount * (1.0 + order.fee_rate))
        order.extra[RUN_KEY] = run_seconds(order) + (t - order.billed_until)
    order.billed_until = t


def run_seconds(order: OrderRec) -> float:
    """How long the order has run (been billed) up to ``billed_until``."""
    return float(order.extra.get(RUN_KEY, 0.0))


def creation_fee_due(order: OrderRec) -> float | None:
    """When the order's creation fee falls due: once it has run ``CREATION_FEE_AFTER``
    seconds (Clore's rule: nothing for an order ended before). None when it is not
    running, has no fee, or paid it."""
    if not order.billing or order.creation_fee <= 0 or order.extra.get(FEE_PAID_KEY):
        return None
    return order.billed_until + max(0.0, CREATION_FEE_AFTER - run_seconds(order))


def creation_fee_charged(order: OrderRec) -> float:
    """The creation fee taken from the order's wallet so far (0 until it has run 10 min)."""
    return order.creation_fee if order.extra.get(FEE_PAID_KEY) else 0.0


def charge_creation_fee(repo: Repository, order: OrderRec) -> None:
    """Debit the order's creation fee from its wallet (once; the caller saves the order)."""
    if order.extra.get(FEE_PAID_KEY) or order.creation_fee <= 0:
        return
    repo.debit(order.user_id, order.currency, order.creation_fee)
    order.extra[FEE_PAID_KEY] = True


def unbilled(order: OrderRec, now: float) -> float:
    """The wallet debit (rental plus fee) ``order`` has accrued but not yet been charged."""
    if not order.billing or now <= order.billed_until:
        return 0.0
    return order.rate * (now - order.billed_until)


def lazy_spend(order: OrderRec, now: float) -> float:
    """``spend`` as of ``now``, including running time not yet charged."""
    if not order.billing or now <= order.billed_until:
        return order.spend
    return order.spend + order.price * (now - order.billed_until) / DAY


def lazy_balance(wallet: WalletRec, orders: list[OrderRec], now: float) -> float:
    """The wallet's balance at ``now``: stored balance minus unbilled charges, never < 0."""
    owed = sum(unbilled(o, now) for o in orders if o.currency == wallet.currency)
    return max(0.0, wallet.balance - owed)


def exhaustion_times(repo: Repository, billing: list[OrderRec]) -> list[tuple[float, int, str]]:
    """When each wallet paying for ``billing`` orders reaches zero: (t, user_id, currency).

    With balance ``B`` and orders of rate ``r_i`` billed until ``b_i``, the balance at ``t``
    is ``B - sum(r_i * (t - b_i))``, which is zero at ``(B + sum(r_i * b_i)) / sum(r_i)``.
    """
    groups: dict[tuple[int, str], list[OrderRec]] = defaultdict(list)
    for order in billing:
        groups[(order.user_id, order.currency)].append(order)
    out: list[tuple[float, int, str]] = []
    for (user_id, currency), orders in groups.items():
        wallet = repo.get_wallet(user_id, currency)
        balance = 0.0 if wallet is None else wallet.balance
        total_rate = sum(o.rate for o in orders)
        if total_rate <= 0:
            continue
        weighted = sum(o.rate * o.billed_until for o in orders)
        out.append(((balance + weighted) / total_rate, user_id, currency))
    return out
