"""Your orders as ``orders`` and ``spend`` list them: the records, newest first with the
ended ones last, and whether each running spot bid is winning (``clore.rentals``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clore.cli._context import AppContext

if TYPE_CHECKING:
    from clore import Order

__all__ = ["collect"]


def collect(app: AppContext, include_completed: bool) -> tuple[list[Order], dict[int, bool]]:
    """Your orders and, for running spot orders, whether each bid is currently winning."""
    from clore.rentals import spot_activity

    client = app.api()
    found = client.my_orders(include_completed=include_completed)
    active = spot_activity(client, found)
    ordered = sorted(found, key=lambda o: (o.expired, -float(o.ct)))
    return ordered, active
