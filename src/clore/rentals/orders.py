"""The renter's orders beyond their records: whether each spot bid is winning now, and
cancelling several orders with every check made before the first cancel.

``spot_activity`` asks ``spot_marketplace`` of each server with a running spot order of
the caller's whether its offer is the active one (``Order.state_at(now, spot_active=)``
turns that into ``outbid``). ``cancel_orders`` refuses a bad ``issue``, an order that is
not the caller's or that has already ended, before anything is cancelled, so a mistyped
id among several leaves none half done.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from clore._errors import OrderExpiredError, OrderNotFoundError, ServerNotFoundError
from clore._validate import validate_cancel_order
from clore._wire import Order, SpotMarket

__all__ = ["CancelClient", "SpotClient", "cancel_orders", "spot_activity"]


class SpotClient(Protocol):
    """What ``spot_activity`` calls (``clore.Clore`` has it)."""

    def spot_marketplace(self, server_id: int) -> SpotMarket: ...


class CancelClient(Protocol):
    """What ``cancel_orders`` calls (``clore.Clore`` has it)."""

    def my_orders(self, include_completed: bool = False) -> list[Order]: ...

    def cancel_order(self, order_id: int, issue: str | None = None) -> None: ...


def spot_activity(client: SpotClient, orders: Iterable[Order]) -> dict[int, bool]:
    """Offer id (= order id) -> whether that bid is the running one, for every offer on
    the servers of the running spot orders among ``orders`` (a server no longer listed is
    skipped)."""
    active: dict[int, bool] = {}
    for server_id in sorted({o.si for o in orders if o.spot and not o.expired}):
        try:
            market = client.spot_marketplace(server_id)
        except ServerNotFoundError:
            continue
        for offer in market.offers:
            active[offer.offer_id] = offer.active
    return active


def cancel_orders(
    client: CancelClient,
    order_ids: Sequence[int],
    issue: str | None = None,
    *,
    cancelled: list[int] | None = None,
) -> dict[int, Order]:
    """Cancel each of ``order_ids`` once (reporting ``issue`` with each), after checking
    them all: ``ParameterError`` for a bad id or issue, ``OrderNotFoundError`` for one
    that is not among the caller's orders, ``OrderExpiredError`` for one already ended.

    Returns each order as ``my_orders`` shows it afterwards (the last record seen before,
    if it is gone). ``cancelled``, when given, gets each id as its cancel succeeds, so a
    caller whose cancel fails midway knows which were done.
    """
    for order_id in order_ids:
        validate_cancel_order(order_id, issue)
    known = {o.id: o for o in client.my_orders(include_completed=True)}
    for order_id in order_ids:
        found = known.get(order_id)
        if found is None:
            raise OrderNotFoundError(
                f"order {order_id} is not among your orders", order_id=order_id
            )
        if found.expired:
            raise OrderExpiredError(f"order {order_id} has already ended", order_id=order_id)
    done = [] if cancelled is None else cancelled
    unique = list(dict.fromkeys(order_ids))
    for order_id in unique:
        client.cancel_order(order_id, issue)
        done.append(order_id)
    final = {o.id: o for o in client.my_orders(include_completed=True)}
    return {order_id: final.get(order_id, known[order_id]) for order_id in unique}
