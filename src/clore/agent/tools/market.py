"""The market tools: ``search_market`` (the filter language, compact rows, paging),
``list_gpus`` (the models with prices) and ``show_server`` (one server and its spot
offers). All read-only, over ``clore.market`` as ``clore market``/``gpus``/``server``.

A search row is a list in the order of ``columns`` (not an object per server: the 20
cheapest matches of the real capture come to well under 2,000 tokens, counting the text
and the data). Only servers that take the currency and list a price in it are rows, as
in ``clore market``; ``not_payable`` counts the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from clore.agent.spec import ToolError, ToolResult, ToolSpec, schema_of, typed
from clore.agent.views import gpu_text, num, server_view, sig

if TYPE_CHECKING:
    from clore import Server
    from clore.agent.context import AgentContext
    from clore.market import PriceContext

__all__ = ["SEARCH_COLUMNS", "TOOLS"]

Currency = Annotated[
    str, Meta(max_length=20, description="btc, clore or usd (default: the person's currency).")
]

#: The columns of a search row.
SEARCH_COLUMNS: Final = (
    "id",
    "gpu",
    "vram_gb",
    "price_h",
    "usd_h",
    "spot_h",
    "reliability",
    "rating",
    "country",
    "cuda",
    "ram_gb",
)


class SearchArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    filters: Annotated[
        list[Annotated[str, Meta(max_length=200)]],
        Meta(
            max_length=32,
            description='Filter words, one per item: "gpu=4090", "gpus>=2", '
            '"price<0.5usd/h", "cc=US,DE", "reliability>=0.95", "cuda>=12.2", "spot".',
        ),
    ] = []
    sort: Annotated[
        str,
        Meta(
            max_length=200,
            description='Comma-separated fields, "-" for descending: "price", '
            '"-reliability", "gpu_price".',
        ),
    ] = "price"
    limit: Annotated[int, Meta(ge=1, le=100, description="Rows per page.")] = 20
    offset: Annotated[int, Meta(ge=0, description="Rows to skip (paging).")] = 0
    currency: Currency | UnsetType = UNSET
    include_rented: Annotated[bool, Meta(description="Also servers rented on demand now.")] = False


class GpusArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    filters: Annotated[
        list[Annotated[str, Meta(max_length=200)]],
        Meta(max_length=32, description='Filter words as in search_market ("gpus>=2", "cc=US").'),
    ] = []
    sort: Annotated[
        Literal["model", "available", "gpus", "price", "median"],
        Meta(
            description="model name, most available servers or GPUs, cheapest or median "
            "price per GPU."
        ),
    ] = "available"
    limit: Annotated[int, Meta(ge=1, le=200)] = 40
    offset: Annotated[int, Meta(ge=0)] = 0
    currency: Currency | UnsetType = UNSET


class ServerArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    server_id: Annotated[int, Meta(ge=1, description="The server's id.")]
    currency: Currency | UnsetType = UNSET


def currency_of(ctx: AgentContext, given: str | UnsetType) -> str:
    """The API key of ``given`` (the policy's currency when not given); ToolError."""
    from clore.market import parse_currency

    if given is UNSET:
        return ctx.policy.currency
    try:
        return parse_currency(given)
    except ValueError as exc:
        raise ToolError(str(exc), error="bad_arguments") from None


def _parse_filters(words: list[str]) -> list[Any]:
    from clore.market import FilterError, parse_filters

    try:
        return parse_filters(words)
    except FilterError as exc:
        raise ToolError(str(exc), error="bad_arguments") from None


def _row(server: Server, ctx: PriceContext) -> list[Any]:
    from clore.market import USD, server_price

    cur = ctx.currency
    day = server_price(server, ctx)
    usd = server_price(server, ctx, USD)
    spot = server.price_per_day(cur, spot=True)
    return [
        server.id,
        gpu_text(server),
        sig(float(server.specs.gpuram), 3),
        sig(None if day is None else day / 24),
        sig(None if usd is None else usd / 24, 3),
        sig(None if spot is None else spot / 24),
        sig(float(server.reliability), 2),
        sig(float(server.rating.avg), 2),
        server.country or None,
        server.cuda or None,
        sig(float(server.specs.ram), 3),
    ]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def search_market(ctx: AgentContext, args: SearchArgs) -> ToolResult:
    """Filter, sort and page the marketplace."""
    from clore.market import PriceContext, SortError, label, parse_sort, select
    from clore.rentals import payable

    cur = currency_of(ctx, args.currency)
    words = _parse_filters(args.filters)
    try:
        keys = parse_sort(args.sort)
    except SortError as exc:
        raise ToolError(str(exc), error="bad_arguments") from None
    market = ctx.market()
    price_ctx = PriceContext(cur, market.rates)
    selected = select(
        market.servers, words, price_ctx, sort=keys, include_rented=args.include_rented
    )
    matched = [s for s in selected if payable(s, cur)]
    page = matched[args.offset : args.offset + args.limit]
    rows = [_row(s, price_ctx) for s in page]
    unit = label(cur)
    columns = [
        c.replace("price_h", f"{unit.lower()}_h").replace("spot_h", f"spot_{unit.lower()}_h")
        for c in SEARCH_COLUMNS
    ]
    following = args.offset + len(page)
    data: dict[str, Any] = {
        "total": len(matched),
        "offset": args.offset,
        "not_payable": len(selected) - len(matched),
        "currency": unit,
        "columns": columns,
        "rows": rows,
    }
    if following < len(matched):
        data["next_offset"] = following
    if ctx.policy.allowed_gpus is not None:
        data["rentable_gpus"] = list(ctx.policy.allowed_gpus)
    pool = "servers" if args.include_rented else "available servers"
    head = (
        f"{len(page)} of {len(matched)} matching {pool}"
        f" (from {args.offset}); prices per hour in {unit} and USD"
    )
    lines = [head, "|".join(columns)]
    lines += ["|".join(_cell(v) for v in row) for row in rows]
    if following < len(matched):
        lines.append(f"more: offset={following}")
    if data["not_payable"]:
        lines.append(f"{data['not_payable']} more match but do not take {unit}")
    if ctx.policy.allowed_gpus is not None:
        lines.append(f"rentable GPU models: {', '.join(ctx.policy.allowed_gpus)}")
    return ToolResult(data=data, text="\n".join(lines))


def list_gpus(ctx: AgentContext, args: GpusArgs) -> ToolResult:
    """The GPU models on the market with counts and prices per GPU."""
    from clore.market import PriceContext, label
    from clore.market.gpus import sort_models, summarize

    cur = currency_of(ctx, args.currency)
    words = _parse_filters(args.filters)
    market = ctx.market()
    models = sort_models(
        summarize(market.servers, PriceContext(cur, market.rates), words), args.sort
    )
    page = models[args.offset : args.offset + args.limit]
    unit = label(cur)
    columns = [
        "model",
        "servers_available",
        "gpus_available",
        f"cheapest_{unit.lower()}_gpu_h",
        f"median_{unit.lower()}_gpu_h",
        "cheapest_usd_gpu_h",
    ]

    def hourly(value: float | None) -> float | None:
        return sig(None if value is None else value / 24)

    rows = [
        [
            m.model,
            m.available,
            m.gpus_available,
            hourly(m.cheapest),
            hourly(m.median),
            hourly(m.cheapest_usd),
        ]
        for m in page
    ]
    following = args.offset + len(page)
    data: dict[str, Any] = {
        "total": len(models),
        "offset": args.offset,
        "currency": unit,
        "columns": columns,
        "rows": rows,
    }
    if following < len(models):
        data["next_offset"] = following
    if ctx.policy.allowed_gpus is not None:
        data["rentable_gpus"] = list(ctx.policy.allowed_gpus)
    lines = [
        f"{len(page)} of {len(models)} GPU models (from {args.offset}); prices per GPU-hour "
        "of available servers",
        "|".join(columns),
    ]
    lines += ["|".join(_cell(v) for v in row) for row in rows]
    if following < len(models):
        lines.append(f"more: offset={following}")
    if ctx.policy.allowed_gpus is not None:
        lines.append(f"rentable GPU models: {', '.join(ctx.policy.allowed_gpus)}")
    lines.append('use the model name in search_market as "gpu=MODEL" (an exact model)')
    return ToolResult(data=data, text="\n".join(lines))


def show_server(ctx: AgentContext, args: ServerArgs) -> ToolResult:
    """One server's details and the spot offers on it."""
    from clore import ServerNotFoundError
    from clore.market import PriceContext, label

    cur = currency_of(ctx, args.currency)
    market = ctx.market(rates=False)
    server = market.server(args.server_id)
    if server is None:
        raise ToolError(
            f"server {args.server_id} is not on the marketplace (rented, offline or unknown)",
            error="not_found",
        )
    try:
        book = ctx.client.spot_marketplace(args.server_id)
    except ServerNotFoundError:
        raise ToolError(
            f"server {args.server_id} is not on the marketplace", error="not_found"
        ) from None
    rates = {k: float(v) for k, v in book.currency_rates_in_usd.items() if v} or None
    if rates:
        ctx.set_rates(rates)
    else:
        rates = ctx.rates(market.servers)[0]
    view = server_view(server, PriceContext(cur, rates))
    offers = sorted(book.offers, key=lambda o: float(o.bid), reverse=True)
    shown: list[dict[str, Any]] = [
        {
            "offer_id": o.offer_id,
            "bid_per_hour": sig(float(o.bid) / 24),
            "currency": label(o.currency),
            "active": o.active,
            "mine": o.my,
        }
        for o in offers[:10]
    ]
    allowed = None
    if ctx.policy.allowed_gpus is not None:
        from clore.agent.caps import gpu_allowed

        allowed = gpu_allowed(ctx.policy, server)
    data: dict[str, Any] = {
        "server": view,
        "spot_offers": shown,
        "spot_offers_total": len(offers),
        "rentable_gpu": allowed,
    }
    lines = [
        f"server {server.id}: {view['gpu']} ({num(view['gpuram_gb'])} GB each), "
        f"{'rented' if server.rented else 'available'}, {view['country'] or '?'}",
        f"price {num(view['price_per_hour'])} {view['currency']}/h "
        f"({num(view['usd_per_hour'])} USD/h); spot minimum "
        f"{num(view['spot_min_per_hour'])} {view['currency']}/h",
        f"reliability {num(view['reliability'])}, rating {num(view['rating'])} "
        f"({view['ratings']}), CUDA {view['cuda'] or '-'}, {view['cpu_threads'] or '?'} threads, "
        f"{num(view['ram_gb'])} GB RAM, {num(view['disk_gb'])} GB disk, "
        f"max rental {num(view['max_rental_hours'])} h",
        f"takes: {', '.join(view['currencies'] or ['any'])}",
    ]
    if shown:
        lines.append(
            "spot offers (bid/h): "
            + ", ".join(
                f"{num(o['bid_per_hour'])} {o['currency']}"
                + (" active" if o["active"] else "")
                + (" mine" if o["mine"] else "")
                for o in shown
            )
        )
    else:
        lines.append("no spot offers")
    if allowed is False:
        lines.append("its GPU model is not among the models the person allows renting")
    return ToolResult(data=data, text="\n".join(lines))


TOOLS: Final = [
    ToolSpec(
        name="search_market",
        title="Search the GPU market",
        description=(
            "Search the Clore.ai marketplace for servers to rent. Give filter words "
            '("gpu=4090" is the exact RTX 4090 model, "gpu~4090" any name containing 4090, '
            '"gpus>=2", "price<0.5usd/h", "reliability>=0.95", "cc=US,DE", "cuda>=12.2") and '
            "a sort order; results are compact rows (columns named once) with prices per hour "
            "in the payment currency and in USD, cheapest first by default, paged with "
            "limit/offset and a total. Use list_gpus for the model names. Only available servers "
            "that take the currency are listed unless include_rented is set."
        ),
        input_schema=schema_of(SearchArgs),
        read_only=True,
        destructive=False,
        idempotent=True,
        mutating=False,
        handler=typed(SearchArgs, search_market),
        arguments=SearchArgs,
    ),
    ToolSpec(
        name="list_gpus",
        title="List GPU models with prices",
        description=(
            "List the GPU models on the marketplace: for each exact model (the name "
            'search_market\'s "gpu=" filter takes), how many servers and GPUs are available '
            "and the cheapest and median price per GPU-hour of the available servers that "
            "take the currency (and the cheapest in USD). Sorted by availability by default; "
            "paged with limit/offset. Filters narrow the servers counted."
        ),
        input_schema=schema_of(GpusArgs),
        read_only=True,
        destructive=False,
        idempotent=True,
        mutating=False,
        handler=typed(GpusArgs, list_gpus),
        arguments=GpusArgs,
    ),
    ToolSpec(
        name="show_server",
        title="Show one server",
        description=(
            "Show one marketplace server in detail before quoting it: GPU model and memory, "
            "price per hour on demand and the spot minimum (payment currency and USD), "
            "reliability and rating, CUDA, CPU, RAM, disk, network, maximum rental, accepted "
            "currencies, and the spot offers on it (highest bid first, which one runs, yours)."
        ),
        input_schema=schema_of(ServerArgs),
        read_only=True,
        destructive=False,
        idempotent=True,
        mutating=False,
        handler=typed(ServerArgs, show_server),
        arguments=ServerArgs,
    ),
]
