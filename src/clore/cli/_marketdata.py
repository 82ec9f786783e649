"""The CLI's view of the cached marketplace (``clore.market.cache``): its lifetime from
``--max-age`` or ``CLORE_MARKET_TTL``, one cache per endpoint, spinners while it fetches.

A cached listing is used without building a client (no config read, no embedded sandbox
opened): the client is made only when a request is needed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from clore.cli._context import EXIT_NOT_FOUND, AppContext, CliError

if TYPE_CHECKING:
    from clore import Server, SpotMarket
    from clore.market.cache import MarketData

__all__ = ["find_server", "invalidate", "load", "ttl"]


def ttl(max_age: float | None = None) -> float:
    """The cache lifetime: ``--max-age``, else ``CLORE_MARKET_TTL``, else 30 s."""
    from clore.market.cache import DEFAULT_TTL, TTL_ENV

    if max_age is not None:
        return max_age
    raw = os.environ.get(TTL_ENV)
    if raw:
        from clore.cli._params import parse_number

        return parse_number(raw, f"{TTL_ENV} (seconds)", minimum=0.0)
    return DEFAULT_TTL


class _OnDemand:
    """The client, built on its first request (``clore.market.cache.MarketClient``)."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    @property
    def has_api_key(self) -> bool:
        return self.app.has_key()

    def marketplace(self) -> list[Server]:
        return self.app.api(auth=False).marketplace()

    def spot_marketplace(self, server_id: int) -> SpotMarket:
        return self.app.api(auth=False).spot_marketplace(server_id)


def load(
    app: AppContext,
    *,
    refresh: bool = False,
    max_age: float | None = None,
    rates: bool = True,
) -> MarketData:
    """The marketplace (from the cache when fresh enough) and, with ``rates``, USD rates."""
    from clore.market.cache import load as load_cached

    lifetime = ttl(max_age)
    return load_cached(
        _OnDemand(app),
        endpoint=app.endpoint_label,
        now=app.clock.time(),
        refresh=refresh,
        max_age=lifetime,
        rates=rates,
    )


def invalidate(app: AppContext) -> None:
    """Forget the cached listing (after renting or cancelling changes the market)."""
    from clore.market.cache import invalidate as forget

    forget(app.endpoint_label)


def find_server(data: MarketData, server_id: int) -> Server:
    """The server with ``server_id`` in ``data``; exit 4 when the marketplace lacks it."""
    found = data.server(server_id)
    if found is None:
        raise CliError(f"server {server_id} is not on the marketplace", EXIT_NOT_FOUND)
    return found
