"""``clore gpus [FILTER]...``: the GPU models on the market, by the exact names ``gpu=``
matches, with their servers, GPUs and prices per GPU-day (``clore.market.gpus``).

Uses the cached marketplace (``clore.market.cache``, as ``clore market``).
"""

from __future__ import annotations

import click

from clore.cli._context import AppContext, pass_app
from clore.cli._currency import price_context, resolve_currency, with_currency
from clore.cli._output import Column, json_option
from clore.cli._params import Number
from clore.market.gpus import SORT_KEYS

__all__ = ["gpus"]


@click.command()
@click.argument("filters", nargs=-1, metavar="[FILTER]...")
@click.option(
    "--sort",
    "sort_key",
    type=click.Choice(SORT_KEYS),
    default="model",
    show_default=True,
    help="model (by name, numbers as numbers), available or gpus (most first), price or "
    "median (cheapest per GPU-day first).",
)
@with_currency
@click.option("--refresh", is_flag=True, help="Ignore the cached listing; fetch a new one.")
@click.option(
    "--max-age",
    type=Number(min=0),
    metavar="SECONDS",
    help="Reuse a cached listing up to this old (default 30, or CLORE_MARKET_TTL).",
)
@json_option
@pass_app
def gpus(
    app: AppContext,
    /,
    filters: tuple[str, ...],
    sort_key: str,
    currency: str,
    refresh: bool,
    max_age: float | None,
) -> None:
    """List the GPU models on the market: servers and GPUs available of those listed, and
    the cheapest and median price per GPU-day of the available servers that take the
    currency, in it and in USD.

    The model names are those `gpu=` matches exactly (gpu=4090 is the RTX 4090, not the
    RTX 4090 D nor the laptop part). FILTER words (as for `clore market`) narrow the
    servers counted.

    \b
    Examples:
      clore gpus
      clore gpus gpus>=4 --sort available
      clore gpus cc=US,DE --sort price --currency clore
    """
    from clore.cli._marketdata import load
    from clore.market import USD, format_amount, label, parse_filters
    from clore.market.gpus import sort_models, summarize

    cur = resolve_currency(currency)
    words = parse_filters(filters)
    data = load(app, refresh=refresh, max_age=max_age)
    ctx = price_context(app, data, cur)
    models = sort_models(summarize(data.servers, ctx, words), sort_key)
    out = app.out

    def human() -> None:
        tag = label(cur)
        columns = [
            Column("Model", "left", 99),
            Column("Servers", "right", 98),
            Column("GPUs", "right", 97),
            Column(f"cheapest {tag}/GPU-day", "right", 96),
            Column(f"median {tag}/GPU-day", "right", 95),
        ]
        if cur != USD:
            columns += [Column("cheapest USD", "right", 94), Column("median USD", "right", 93)]
        rows = []
        for m in models:
            row = [
                m.model,
                f"{m.available}/{m.servers}",
                f"{m.gpus_available}/{m.gpus}",
                format_amount(m.cheapest, cur),
                format_amount(m.median, cur),
            ]
            if cur != USD:
                row += [format_amount(m.cheapest_usd, USD), format_amount(m.median_usd, USD)]
            rows.append(row)
        out.table(columns, rows)
        age = app.clock.time() - data.fetched_at
        source = f"cached {age:.0f} s ago" if data.cached else "fresh"
        counted = sum(m.servers for m in models)
        out.info(
            f"{len(models)} models on {counted} listed servers ({source}); servers and GPUs: "
            f"available/listed; prices per GPU-day of the available servers that take {tag}"
        )

    out.result(
        {
            "currency": cur,
            "rates": data.rates,
            "fetched_at": data.fetched_at,
            "cached": data.cached,
            "sort": sort_key,
            "models": [m.to_json() for m in models],
        },
        human,
    )
