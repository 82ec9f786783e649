"""``clore gpus [FILTER]...``: the GPU models on the market, by the exact names ``gpu=``
matches, with their servers, GPUs and prices per GPU-day (``clore.market.gpus``).

Uses the cached marketplace (``clore.market.cache``, as ``clore market``).
"""

from __future__ import annotations

import click

from clore.cli._context import AppContext, pass_app
from clore.cli._currency import price_context, resolve_currency, with_currency
from clore.cli._output import Column, json_option, listing_options
from clore.cli._params import Number
from clore.market.gpus import SORT_KEYS

__all__ = ["gpus"]

#: ``--columns`` names (the USD ones only when --currency is not USD).
COLUMN_NAMES = ("model", "servers", "gpus", "cheapest", "median", "cheapest_usd", "median_usd")


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
@listing_options(*COLUMN_NAMES)
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
    from clore.cli._format import amount, duration
    from clore.cli._marketdata import load
    from clore.market import USD, label, parse_filters
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
            Column("Model", "left", 99, "model"),
            Column("Servers", "right", 98, "servers"),
            Column("GPUs", "right", 97, "gpus"),
            Column(f"cheapest {tag}/GPU-day", "right", 96, "cheapest"),
            Column(f"median {tag}/GPU-day", "right", 95, "median"),
        ]
        if cur != USD:
            columns += [
                Column("cheapest USD", "right", 94, "cheapest_usd"),
                Column("median USD", "right", 93, "median_usd"),
            ]
        rows = []
        for m in models:
            row = [
                m.model,
                f"{m.available}/{m.servers}",
                f"{m.gpus_available}/{m.gpus}",
                amount(m.cheapest, cur),
                amount(m.median, cur),
            ]
            if cur != USD:
                row += [amount(m.cheapest_usd, USD), amount(m.median_usd, USD)]
            rows.append(row)
        age = app.clock.time() - data.fetched_at
        source = f"cached {duration(age)} ago" if data.cached else "fresh"
        listed = f"{len(data.servers)} listed servers; {source}"
        out.table(columns, rows, empty=f"No GPU models match (of {listed}).")
        if models:
            counted = sum(m.servers for m in models)
            out.info(
                f"{len(models)} models on {counted} listed servers ({source}); servers and "
                f"GPUs: available/listed; prices per GPU-day of the available servers that "
                f"take {tag}"
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
