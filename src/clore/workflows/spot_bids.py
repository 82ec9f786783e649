"""Pure bidding decisions of the spot keeper: given the spot market and our offer, what next.

Rules (prices per day, in the order's currency, rounded to 8 decimals):

* **Outbid** (our offer is not the active one while another is): bid
  ``min(max_bid, winning + step)``, where ``step`` is the caller's or 1% of the winning bid
  (at least 1e-8). Raising is immediate. When ``max_bid`` does not exceed the winning bid
  the decision is ``cap_exceeded``: we never bid above the cap.
* **Winning**: the lowest bid that still wins is ``floor = max(server minimum,
  highest other bid + step)``. Above it, lower towards it by at most ``max_step``
  (a fraction of the current bid, 10% unless the API said otherwise) and not within
  ``lower_every`` (600 s) of the previous lowering; before that the decision is ``wait``.
* A bid under the server's minimum (the host raised it) is raised to the minimum.
* Nobody active: ``hold``, the reason ``rented on demand`` (the server is online: an
  on-demand renter holds it; every spot offer waits until that rental ends) or
  ``offline``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from clore._facts import SPOT_LOWER_INTERVAL
from clore._wire import SpotMarket
from clore.workflows.plan import round_price

__all__ = ["MIN_STEP", "BidDecision", "decide_bid", "default_step", "entry_bid"]

#: The smallest price increment the API keeps (8 decimals).
MIN_STEP: Final = 1e-8

Action = Literal["hold", "raise", "lower", "wait", "cap_exceeded"]


@dataclass(frozen=True)
class BidDecision:
    """What to do with our bid: ``action``, the new ``price`` (raise/lower) and why."""

    action: Action
    price: float | None = None
    winning: float | None = None
    floor: float | None = None
    wait: float | None = None
    reason: str = ""


def default_step(reference: float, step: float | None = None) -> float:
    """The increment over a competing bid: ``step`` if given, else 1% of ``reference``."""
    if step is not None:
        return max(step, MIN_STEP)
    return max(round_price(reference * 0.01, up=True), MIN_STEP)


def _others(market: SpotMarket, order_id: int, currency: str) -> list[float]:
    return [
        float(o.bid) for o in market.offers if o.offer_id != order_id and o.currency == currency
    ]


def entry_bid(
    market: SpotMarket, currency: str, *, step: float | None = None, order_id: int = -1
) -> float:
    """The bid that would win ``market`` now: above the active offer, at least the minimum."""
    minimum = float(market.server.min_pricing.get(currency, 0.0))
    active = [
        float(o.bid)
        for o in market.offers
        if o.active and o.offer_id != order_id and o.currency == currency
    ]
    if not active:
        return round_price(minimum, up=True)
    top = max(active)
    return round_price(max(minimum, top + default_step(top, step)), up=True)


def decide_bid(
    market: SpotMarket,
    order_id: int,
    bid: float,
    currency: str,
    *,
    max_bid: float,
    now: float,
    step: float | None = None,
    step_fraction: float = 0.1,
    last_lower_at: float | None = None,
    lower_every: float = SPOT_LOWER_INTERVAL,
) -> BidDecision:
    """Decide the next move for order ``order_id`` bidding ``bid`` (see the module docstring)."""
    mine = next((o for o in market.offers if o.offer_id == order_id), None)
    if mine is not None:
        bid = float(mine.bid)
    minimum = float(market.server.min_pricing.get(currency, 0.0))
    others = _others(market, order_id, currency)
    winning = market.winning
    top_other = max(others, default=None)

    if mine is None or not mine.active:
        if winning is None or winning.offer_id == order_id:
            if bid < minimum:
                return _raise_to(round_price(minimum, up=True), max_bid, None, "below minimum")
            why = "rented on demand" if market.server.online else "offline"
            return BidDecision("hold", winning=None, reason=why)
        top = float(winning.bid)
        needed = round_price(max(minimum, top + default_step(top, step)), up=True)
        return _raise_to(needed, max_bid, top, "outbid")

    floor = minimum
    if top_other is not None:
        floor = max(floor, top_other + default_step(top_other, step))
    floor = round_price(floor, up=True)
    if bid < minimum:
        return _raise_to(round_price(minimum, up=True), max_bid, bid, "below minimum")
    if bid <= floor:
        return BidDecision("hold", winning=bid, floor=floor, reason="lowest winning bid")
    if last_lower_at is not None and now - last_lower_at < lower_every:
        wait = lower_every - (now - last_lower_at)
        return BidDecision("wait", winning=bid, floor=floor, wait=wait, reason="600 s rule")
    max_step = round_price(bid * step_fraction)
    target = max(floor, round_price(bid - max_step, up=True))
    if target >= bid:
        return BidDecision("hold", winning=bid, floor=floor, reason="step too small")
    return BidDecision("lower", price=target, winning=bid, floor=floor, reason="alone above floor")


def _raise_to(needed: float, max_bid: float, winning: float | None, reason: str) -> BidDecision:
    if needed <= max_bid + 1e-12:
        return BidDecision("raise", price=needed, winning=winning, reason=reason)
    if winning is not None and max_bid > winning and reason == "outbid":
        # The full step does not fit, but the cap itself still beats the winner.
        return BidDecision("raise", price=max_bid, winning=winning, reason="outbid, at the cap")
    return BidDecision("cap_exceeded", price=needed, winning=winning, reason=reason)
