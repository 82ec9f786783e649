"""Spot market: ``spot_marketplace`` and ``set_spot_price``."""

from __future__ import annotations

import math

from clore._facts import EXCEEDED_MAX_STEP, LOWERING_TOO_SOON, SPOT_LOWER_INTERVAL, TOO_LOW_PRICE
from clore._wire import SetSpotPriceRequest
from clore.sandbox.backend.billing import accrue
from clore.sandbox.backend.errors import application_error, invalid_input
from clore.sandbox.backend.lifecycle import rerank
from clore.sandbox.backend.orders import own_live_order
from clore.sandbox.backend.records import SpotMarketView
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import MAX_STEP_FRACTION, to_usd
from clore.sandbox.backend.validate import check_id, check_price, check_request

__all__ = ["max_step", "set_spot_price", "spot_marketplace"]


def max_step(bid: float) -> float:
    """The largest single lowering of ``bid``: 10% of it, rounded to 8 decimals."""
    return round(bid * MAX_STEP_FRACTION, 8)


def spot_marketplace(
    repo: Repository, user_id: int | None, server_id: int
) -> SpotMarketView | None:
    """Live offers on a server, highest first; None when there is no such public server."""
    check_id(server_id, "market")
    server = repo.get_server(server_id)
    if server is None or (not server.visible and server.owner != user_id):
        return None
    offers = [o for o in repo.live_orders_on(server_id) if o.spot]
    offers.sort(key=lambda o: (-to_usd(o.price, o.currency), o.id))
    return SpotMarketView(server=server, offers=[(o, o.user_id == user_id) for o in offers])


def set_spot_price(repo: Repository, now: float, user_id: int, req: SetSpotPriceRequest) -> None:
    """Change the bid of one of the caller's spot offers.

    Raising is immediate. Lowering must stay at or above the server's minimum
    (``too_low_price``), within ``max_step`` of the current bid (``exceeded_max_step``), and
    at most once per 600 s (``can_lower_every_600_seconds``).
    """
    desired = check_price(check_request(req, "set_spot_price").desired_price, "desired_price")
    order = own_live_order(repo, user_id, req.order_id, "order_id")
    if order is None or not order.spot:
        raise invalid_input("order_id: not a live spot offer")
    server = repo.get_server(order.server_id)
    if server is None:
        raise invalid_input("order_id: server is gone")
    current = order.price
    if math.isclose(desired, current, rel_tol=1e-12, abs_tol=0.0):
        return
    minimum = server.spot.get(order.currency)
    if minimum is not None and desired < minimum and not math.isclose(desired, minimum):
        raise application_error(TOO_LOW_PRICE)
    if desired < current:
        step = max_step(current)
        if current - desired > step + 1e-12:
            raise application_error(EXCEEDED_MAX_STEP, max_step=step)
        if order.last_lowered is not None:
            waited = now - order.last_lowered
            if waited < SPOT_LOWER_INTERVAL:
                left = math.ceil(SPOT_LOWER_INTERVAL - waited)
                raise application_error(LOWERING_TOO_SOON, time_to_lowering=left)
        order.last_lowered = now
    accrue(repo, order, now)
    order.price = desired
    repo.update_order(order)
    rerank(repo, server, now)
