"""One marketplace query: available servers, filtered, sorted, limited. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from clore.market.filters import Filter, compile_filters
from clore.market.pricing import PriceContext
from clore.market.sorting import SortKey, sort_servers

if TYPE_CHECKING:
    from clore._wire import Server

__all__ = ["select"]


def select(
    servers: Iterable[Server],
    filters: Sequence[Filter],
    ctx: PriceContext,
    *,
    sort: list[SortKey] | None = None,
    include_rented: bool = False,
    limit: int | None = None,
) -> list[Server]:
    """The servers that match every filter (available ones unless ``include_rented``).

    Sorted by ``sort`` (stable, unknown values last) and cut to ``limit`` when given (a
    limit of 0 or None keeps everything).
    """
    predicate = compile_filters(filters, ctx)
    chosen = [s for s in servers if (include_rented or not s.rented) and predicate(s)]
    if sort:
        chosen = sort_servers(chosen, sort, ctx)
    return chosen[:limit] if limit else chosen
