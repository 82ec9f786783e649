"""The words the CLI shows for an order's status (docs/cli.md, JSON output):
``clore.rentals.order_status`` with a running order called ``ready``.

``provisioning``, ``ready``, ``offline``, ``outbid`` (a running spot bid not winning),
``expired`` (ran to its end), ``cancelled`` (ended early), ``budget_stopped`` (ended
early by this client's budget guard, as its log says).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from clore import Order
    from clore.rentals import BudgetStop

__all__ = ["STATE_STYLES", "load_stops", "state_word"]

#: Rich styles of the words in tables.
STATE_STYLES: Final[dict[str, str]] = {
    "ready": "green",
    "provisioning": "yellow",
    "outbid": "magenta",
    "offline": "red",
    "expired": "dim",
    "cancelled": "dim",
    "budget_stopped": "dim yellow",
}


def load_stops() -> dict[int, list[BudgetStop]]:
    """The budget guard's logged cancels (empty when it never cancelled anything)."""
    from clore.rentals import budget_stops

    return budget_stops()


def state_word(
    order: Order,
    now: float,
    spot_active: bool | None = None,
    stops: Mapping[int, list[BudgetStop]] | None = None,
) -> str:
    """The order's status word at server time ``now``; ``stops`` (``load_stops()``) is
    read from the guard's log when not given and the order ended early."""
    from clore.rentals import order_status

    if stops is None and order.expired:
        stops = load_stops()
    status = order_status(order, now, spot_active=spot_active, stops=stops)
    return "ready" if status == "running" else status
