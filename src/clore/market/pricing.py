"""Prices and currencies: parse ``3usd`` / ``0.2usd/h`` / ``500clore``, convert, label.

Every marketplace price is **per day** in a named currency. A ``PriceContext`` says which
currency the user pays in (``--currency``, default ``bitcoin``) and, when known, the USD
rate of each currency (``spot_marketplace`` returns them as ``currency_rates_in_usd``).

The price of a server *in* some currency is read the same way everywhere (table, filters,
sorting): the server's own price in that currency when it lists one; otherwise its price in
the payment currency converted, or else the first other listed currency that converts.
Without rates, USD figures fall back to a native ``USD-Blockchain`` price or the
record's own ``price.usd`` figures; anything else is unknown (``None``) and never matches
a price filter.

The currency names and aliases are ``clore._facts``'s (the table ``create_order`` uses).
Pure: no I/O, and no msgspec import (``clore --help`` stays fast).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from clore._facts import CURRENCY_ALIASES

if TYPE_CHECKING:
    from clore._wire import Server

__all__ = [
    "CURRENCY_LABELS",
    "USD",
    "Amount",
    "PriceContext",
    "convert",
    "format_amount",
    "label",
    "parse_amount",
    "parse_currency",
    "server_price",
]

USD: Final = "USD-Blockchain"

#: Short labels for tables and messages ("0.00030 BTC/day").
CURRENCY_LABELS: Final[Mapping[str, str]] = {
    "bitcoin": "BTC",
    "CLORE-Blockchain": "CLORE",
    "USD-Blockchain": "USD",
}

_AMOUNT_RE: Final = re.compile(
    r"""^\s*
    (?P<number>[0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?|\.[0-9]+(?:e[+-]?[0-9]+)?)
    \s*(?P<currency>[a-z][a-z-]*)?
    \s*(?:/\s*(?P<period>h|hr|hour|d|day))?
    \s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def parse_currency(name: str) -> str:
    """The API key of currency ``name`` (``btc``, ``clore``, ``usd`` or a full key).

    Raises ``ValueError`` naming the accepted spellings.
    """
    key = CURRENCY_ALIASES.get(name.strip().lower())
    if key is None:
        raise ValueError(
            f"unknown currency {name!r}: use btc, clore or usd "
            "(or bitcoin, CLORE-Blockchain, USD-Blockchain)"
        )
    return key


def label(currency: str) -> str:
    """Short label of a currency key: ``bitcoin`` -> ``BTC``."""
    return CURRENCY_LABELS.get(currency, currency)


@dataclass(frozen=True)
class Amount:
    """A typed price: ``value`` in ``currency`` (None: no suffix) per hour or per day."""

    value: float
    currency: str | None = None
    per_hour: bool = False

    @property
    def per_day(self) -> float:
        """The amount per day (per-hour amounts times 24)."""
        return self.value * 24.0 if self.per_hour else self.value

    def in_currency(self, default: str) -> str:
        """The amount's currency, or ``default`` when it was typed without a suffix."""
        return self.currency or default


def parse_amount(text: str) -> Amount:
    """Parse ``3``, ``3usd``, ``0.2usd/h``, ``0.0001btc``, ``500clore/day``.

    The currency suffix is optional (the caller decides the default); ``/h`` marks an
    hourly amount, ``/d`` (the default) a daily one. Raises ``ValueError`` explaining the form.
    """
    match = _AMOUNT_RE.match(text)
    if match is None:
        raise ValueError(
            f"bad price {text!r}: expected a number with an optional currency "
            "(usd, btc, clore) and /h for per hour, e.g. 3usd or 0.2usd/h"
        )
    value = float(match.group("number"))
    if not math.isfinite(value):
        raise ValueError(f"bad price {text!r}: the number is too large")
    suffix = match.group("currency")
    currency = parse_currency(suffix) if suffix else None
    period = (match.group("period") or "d").lower()
    return Amount(value=value, currency=currency, per_hour=period.startswith("h"))


def convert(
    amount: float, source: str, target: str, rates: Mapping[str, float] | None
) -> float | None:
    """Convert ``amount`` from ``source`` to ``target`` with USD ``rates``; None if unknown.

    ``USD-Blockchain`` is worth 1 USD even when ``rates`` omits it.
    """
    if source == target:
        return float(amount)
    table: dict[str, float] = {USD: 1.0}
    if rates:
        table.update({key: float(value) for key, value in rates.items() if value})
    source_rate = table.get(source)
    target_rate = table.get(target)
    if source_rate is None or target_rate is None:
        return None
    return float(amount) * source_rate / target_rate


@dataclass(frozen=True)
class PriceContext:
    """How to read prices: the payment currency and the known USD rates (or None)."""

    currency: str = "bitcoin"
    rates: Mapping[str, float] | None = field(default=None)


def _usd_hint(server: Server, source: str, *, spot: bool) -> float | None:
    """The record's own USD figure (``price.usd``) for a price in ``source``, if any."""
    usd = server.price.usd
    if not hasattr(usd, "on_demand_btc"):  # UNSET on records without price.usd
        return None
    if spot:
        value = getattr(usd, "spot", None)
    else:
        attr = {
            "bitcoin": "on_demand_btc",
            "CLORE-Blockchain": "on_demand_clore",
            USD: "on_demand_usd",
        }.get(source)
        value = getattr(usd, attr, None) if attr else None
    return None if value is None else float(value)


def server_price(
    server: Server, ctx: PriceContext, target: str | None = None, *, spot: bool = False
) -> float | None:
    """Per-day price of ``server`` in ``target`` (default: the payment currency).

    On-demand, or the spot minimum with ``spot=True``. The server's own price in ``target``
    when it lists one; otherwise converted from the payment currency, then from the other
    listed currencies in the API's order. None when nothing converts to ``target``.
    """
    wanted = target or ctx.currency
    table = server.price.spot if spot else server.price.on_demand
    own = table.get(wanted)
    if own is not None:
        return float(own)
    sources = [ctx.currency] if ctx.currency in table else []
    sources += [name for name in table if name != ctx.currency]
    for source in sources:
        amount = table[source]
        if amount is None:
            continue
        value = convert(float(amount), source, wanted, ctx.rates)
        if value is None and wanted == USD:
            value = _usd_hint(server, source, spot=spot)
        if value is not None:
            return value
    return None


def format_amount(value: float | None, currency: str) -> str:
    """An amount as every table and message shows it (``clore.market.units.amount``: the
    currency's significant digits, no exponent), ``—`` when unknown."""
    from clore.market.units import amount

    return amount(value, currency)
