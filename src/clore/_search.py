"""``Clore.search``'s pure parts: the query checked, the servers chosen as ``clore market``
chooses them, and where the USD rates come from. The clients only fetch."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clore import _validate
from clore._errors import CloreError

if TYPE_CHECKING:
    from clore._wire import Server, SpotMarket
    from clore.market import Filter, SortKey

__all__ = ["SearchPlan", "rates_of", "rates_server", "rates_table"]


@dataclass(frozen=True)
class SearchPlan:
    """A checked ``search``: its filters, sort keys and payment currency (nothing sent)."""

    filters: list[Filter]
    keys: list[SortKey]
    currency: str

    @classmethod
    def of(cls, query: str | Sequence[str], currency: str, sort: str) -> SearchPlan:
        from clore.market import parse_filters, parse_sort

        words = shlex.split(query) if isinstance(query, str) else list(query)
        return cls(parse_filters(words), parse_sort(sort), _validate.validate_currency(currency))

    @property
    def needs_rates(self) -> bool:
        """A price filter may compare in another currency than the payment one."""
        return any(f.field.kind == "price" for f in self.filters)

    def select(
        self,
        servers: list[Server],
        rates: Mapping[str, float] | None,
        *,
        include_rented: bool,
        limit: int | None,
    ) -> list[Server]:
        from clore.market import PriceContext, select

        ctx = PriceContext(self.currency, dict(rates) if rates else None)
        chosen = select(servers, self.filters, ctx, sort=self.keys, include_rented=include_rented)
        payable = [
            s
            for s in chosen
            if s.accepts(self.currency) and s.price_per_day(self.currency) is not None
        ]
        return payable[:limit] if limit else payable


def rates_server(servers: list[Server]) -> int | None:
    """The server whose ``spot_marketplace`` supplies the USD rates (the first available,
    as the CLI's cache picks it); None for an empty marketplace."""
    if not servers:
        return None
    return next((s for s in servers if not s.rented), servers[0]).id


def rates_table(spot: SpotMarket) -> dict[str, float] | None:
    rates = {name: float(value) for name, value in spot.currency_rates_in_usd.items() if value}
    return rates or None


def rates_of(fetch: Callable[[], SpotMarket]) -> dict[str, float] | None:
    try:
        return rates_table(fetch())
    except CloreError:
        return None  # USD figures then fall back as the CLI's do
