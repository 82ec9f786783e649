"""An order's status as every face shows it: ``Order.state_at`` (what the API says) told
apart further by what this client itself did.

The API flags every ended order ``expired``; ``Order.state_at`` tells an order that ran
its course (``expired``) from one that ended early (``cancelled``), and a running spot
bid that is not winning (``outbid``). What the API cannot say is *who* ended an order
early: a budget guard of this client logs each of its cancels (``workflows/guard.log``
in the data directory, one JSON line with the order id and the reason), so an order
ended early that the guard stopped is ``budget_stopped``. (The log's times are the
guard's own clock, not the server's, so a stop is matched by the order id alone.)

``budget_stops`` reads that log; ``order_status`` combines the two.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from clore._wire import Order
from clore.workflows.state import workflows_dir

__all__ = ["GUARD_LOG", "STATUSES", "BudgetStop", "OrderStatus", "budget_stops", "order_status"]

OrderStatus = Literal[
    "provisioning", "running", "offline", "outbid", "expired", "cancelled", "budget_stopped"
]
#: Every status, in the order a listing explains them.
STATUSES: Final[tuple[OrderStatus, ...]] = (
    "provisioning",
    "running",
    "offline",
    "outbid",
    "expired",
    "cancelled",
    "budget_stopped",
)
GUARD_LOG: Final = "guard.log"


@dataclass(frozen=True)
class BudgetStop:
    """One cancel of a budget guard: the order, when (the guard's time), and why."""

    order_id: int
    at: float
    reason: str


def budget_stops(path: Path | None = None) -> dict[int, list[BudgetStop]]:
    """Order id -> the guard's logged cancels of it (``workflows/guard.log`` unless
    ``path``); empty when there is no log. Lines that are not a cancel record are skipped."""
    log = workflows_dir() / GUARD_LOG if path is None else path
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    stops: dict[int, list[BudgetStop]] = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        order_id, at = record.get("order_id"), record.get("at")
        if isinstance(order_id, bool) or not isinstance(order_id, int):
            continue
        if isinstance(at, bool) or not isinstance(at, int | float):
            continue
        reason = str(record.get("reason") or "budget limit")
        stops.setdefault(order_id, []).append(BudgetStop(order_id, float(at), reason))
    return stops


def order_status(
    order: Order,
    now: float,
    *,
    spot_active: bool | None = None,
    stops: Mapping[int, list[BudgetStop]] | None = None,
) -> OrderStatus:
    """``order.state_at(now, spot_active=)``, with an early end that this client's
    budget guard logged (``stops``, from ``budget_stops()``) as ``budget_stopped``."""
    state = order.state_at(now, spot_active=spot_active)
    if state == "cancelled" and stops and stops.get(order.id):
        return "budget_stopped"
    return state
