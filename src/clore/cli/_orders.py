"""Your orders as ``orders``, ``order`` and ``spend`` show them: the records, newest first
with the ended ones last, whether each running spot bid is winning (``clore.rentals``),
and one order's JSON record in this client's words (``record``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clore.cli._context import AppContext
from clore.cli._format import order_doc
from clore.cli._states import state_word

if TYPE_CHECKING:
    from clore import Order
    from clore.rentals import BudgetStop

Stops = dict[int, list["BudgetStop"]]

__all__ = ["Stops", "collect", "record"]


def collect(app: AppContext, include_completed: bool) -> tuple[list[Order], dict[int, bool]]:
    """Your orders and, for running spot orders, whether each bid is currently winning."""
    from clore.rentals import spot_activity

    client = app.api()
    found = client.my_orders(include_completed=include_completed)
    active = spot_activity(client, found)
    ordered = sorted(found, key=lambda o: (o.expired, -float(o.ct)))
    return ordered, active


def record(
    order: Order, now: float, spot_active: bool | None = None, stops: Stops | None = None
) -> dict[str, Any]:
    """``order_doc`` with the state in this client's words (``_states.state_word``)."""
    doc = order_doc(order, now, spot_active)
    doc["derived"]["state"] = state_word(order, now, spot_active, stops)
    return doc
