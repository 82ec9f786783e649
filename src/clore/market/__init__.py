"""The marketplace, client side: filter language, sorting and prices (pure functions).

``clore.market`` does no I/O and imports neither click nor msgspec; the CLI and the
workflows feed it ``clore.Server`` records.
"""

from __future__ import annotations

from clore.market.filters import (
    ALIASES,
    FIELDS,
    Field,
    Filter,
    FilterError,
    compile_filters,
    describe_fields,
    parse_filter,
    parse_filters,
)
from clore.market.pricing import (
    CURRENCY_LABELS,
    USD,
    Amount,
    PriceContext,
    convert,
    format_amount,
    label,
    parse_amount,
    parse_currency,
    server_price,
)
from clore.market.query import select
from clore.market.sorting import SortError, SortKey, parse_sort, sort_servers

__all__ = [
    "ALIASES",
    "CURRENCY_LABELS",
    "FIELDS",
    "USD",
    "Amount",
    "Field",
    "Filter",
    "FilterError",
    "PriceContext",
    "SortError",
    "SortKey",
    "compile_filters",
    "convert",
    "describe_fields",
    "format_amount",
    "label",
    "parse_amount",
    "parse_currency",
    "parse_filter",
    "parse_filters",
    "parse_sort",
    "select",
    "server_price",
    "sort_servers",
]
