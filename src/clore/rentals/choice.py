"""Which servers a rental may go to, best first: the ones that match the filters, are
available, accept the paying currency and list a price in it, ranked by that price.

The ranking is ``clore.market``'s sort (on-demand price, or the spot minimum for a spot
bid; ties keep the marketplace's order). ``rentals.placement.place`` tries them in turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from clore._wire import Server
from clore.market import Filter, PriceContext, parse_sort, select

__all__ = ["cheapest", "payable"]


def payable(server: Server, currency: str, *, spot: bool = False) -> bool:
    """True when ``server`` takes ``currency`` and lists a price in it (the spot minimum
    for a spot bid)."""
    return server.accepts(currency) and server.price_per_day(currency, spot=spot) is not None


def cheapest(
    servers: Iterable[Server],
    filters: Sequence[Filter],
    ctx: PriceContext,
    *,
    spot: bool = False,
) -> list[Server]:
    """The available servers matching ``filters`` that can be paid in ``ctx.currency``,
    cheapest first (by the spot minimum when ``spot``)."""
    ranked = select(servers, filters, ctx, sort=parse_sort("spot_price" if spot else "price"))
    return [s for s in ranked if payable(s, ctx.currency, spot=spot)]
