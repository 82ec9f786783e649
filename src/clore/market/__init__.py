"""The marketplace, client side: filter language, sorting, prices and exact GPU models.

``clore.market`` itself (the modules it imports) does no I/O and imports neither click
nor msgspec; the CLI and the workflows feed it ``clore.Server`` records. What does I/O
lives beside it, imported only by those who need it: ``clore.market.history`` (the
market recorded over time, in SQLite) and ``clore.market.cache`` (the listing and USD
rates kept briefly on disk).
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
from clore.market.models import canonical_model, matches_model
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
    "canonical_model",
    "compile_filters",
    "convert",
    "describe_fields",
    "format_amount",
    "label",
    "matches_model",
    "parse_amount",
    "parse_currency",
    "parse_filter",
    "parse_filters",
    "parse_sort",
    "select",
    "server_price",
    "sort_servers",
]
