"""``--currency`` (the currency prices are shown and paid in) and the price context of a
listing: what every command that shows or pays a price shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clore.cli._context import EXIT_USAGE, AppContext, CliError

if TYPE_CHECKING:
    from clore.market import PriceContext
    from clore.market.cache import MarketData

__all__ = ["price_context", "resolve_currency", "with_currency"]


def with_currency(fn: click.decorators.FC) -> click.decorators.FC:
    """``--currency`` (btc, clore, usd; default btc): the currency prices are shown and paid in."""
    return click.option(
        "--currency",
        "-c",
        default="btc",
        show_default=True,
        metavar="C",
        help="Currency to show prices in and pay with: btc, clore or usd.",
    )(fn)


def resolve_currency(text: str) -> str:
    """The API key of ``--currency``; exit 2 naming the accepted names."""
    from clore.market import parse_currency

    try:
        return parse_currency(text)
    except ValueError as exc:
        raise CliError(f"--currency: {exc}", EXIT_USAGE) from None


def price_context(app: AppContext, data: MarketData, currency: str) -> PriceContext:
    """The price context for ``data``; says on stderr when USD figures are approximate."""
    from clore.market import USD, PriceContext

    if data.rates is None and currency != USD:
        app.out.info(
            f"note: no USD rates ({data.rates_note or 'unavailable'}); USD figures use "
            "USD-Blockchain prices or the record's price.usd where present, else —"
        )
    return PriceContext(currency, data.rates)
