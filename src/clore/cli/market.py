"""``clore market`` (filtered, sorted listing; ``record``, ``stats``, ``history`` of the
market's past) and ``clore server ID`` (details + spot offers).

A server that does not take ``--currency`` (or lists no price in it) is left out of the
listing, counted in a note naming the currency that lists it: its price converted into a
currency it cannot be paid in would be a price nobody can rent at.

``market`` is a group that lists servers unless its first word names a subcommand: filter
words always hold an operator (``gpu=4090``) or are the bare ``spot``, so no filter word
is a subcommand's name. The subcommands live in ``history_cmd``, named lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import click

from clore.cli._context import EXIT_USAGE, AppContext, CliError, pass_app
from clore.cli._currency import price_context, resolve_currency, with_currency
from clore.cli._format import (
    amount,
    day_and_hour,
    duration,
    gpu_text,
    money,
    number,
    server_doc,
)
from clore.cli._group import Group
from clore.cli._output import Column, json_option, listing_options
from clore.cli._params import Id, Integer, Number
from clore.market import (
    USD,
    PriceContext,
    describe_fields,
    label,
    server_price,
)

if TYPE_CHECKING:
    from clore import Server

__all__ = ["MarketGroup", "market", "server"]

#: The subcommands of ``clore market`` (the market's past), imported when used.
_SUBCOMMANDS: Final = {
    "record": "clore.cli.history_cmd:record",
    "stats": "clore.cli.history_cmd:stats",
    "history": "clore.cli.history_cmd:show",
}
# ``ctx.meta`` key: the context of a ``market`` invocation that runs a subcommand.
_SUBCOMMAND_MODE: Final = "clore.cli.market.subcommand"

_FILTER_HELP = (
    "FILTER words are `field OP value` with OP one of = != ~ !~ > >= < <= (`=`/`!=` take "
    "comma lists: cc=US,DE). gpu= is an exact model (gpu=4090 is not the 4090 D nor the "
    "laptop part; `clore gpus` lists the names), gpu~ a substring. Prices are per day in "
    "--currency unless suffixed: 3usd, 0.2usd/h, 0.0001btc, 500clore.\n\n\b\nFields:\n"
    + describe_fields()
)


def _row(server: Server, ctx: PriceContext, show_usd: bool, show_status: bool) -> list[str]:
    cur = ctx.currency
    day = server_price(server, ctx)
    usd = server_price(server, ctx, USD)
    # The server's own spot minimum in the currency: a converted one could not be bid.
    spot = server.price_per_day(cur, spot=True)
    row = [
        str(server.id),
        gpu_text(server),
        number(server.specs.gpuram, 0, " GB"),
        amount(day, cur),
        amount(None if day is None else day / 24, cur),
    ]
    if show_usd:
        row += [amount(usd, USD), amount(None if usd is None else usd / 24, USD)]
    row += [
        amount(spot, cur),
        f"{float(server.reliability) * 100:.0f}%",
        f"{float(server.rating.avg):.1f} ({server.rating.cnt})",
        server.country or "—",
        server.cuda or "—",
        f"{server.specs.cpu_threads or '—'}",
        number(server.specs.ram, 0, " GB"),
        number(server.specs.disk_size_gb, 0, " GB"),
        f"{float(server.specs.net.down):.0f}/{float(server.specs.net.up):.0f}",
    ]
    if show_status:
        row.append("rented" if server.rented else "free")
    return row


#: ``--columns`` names of the listing (``usd``/``usd_h`` only when --currency is not USD,
#: ``status`` only with --all).
COLUMN_NAMES: Final = (
    "id", "gpu", "vram", "price", "price_h", "usd", "usd_h", "spot", "reliability",
    "rating", "cc", "cuda", "threads", "ram", "disk", "net", "status",
)  # fmt: skip


def _columns(currency: str, show_usd: bool, show_status: bool) -> list[Column]:
    """The listing's columns. At 80 columns a terminal keeps what a renter picks by: id,
    GPU, price per day, spot minimum, USD per hour, reliability, country, CUDA, rating
    (and the status with --all); -o wide shows the rest."""
    cur = label(currency)
    columns = [
        Column("ID", "right", 100, "id"),
        Column("GPU", "left", 99, "gpu"),
        Column("VRAM", "right", 60, "vram"),
        Column(f"{cur}/day", "right", 98, "price"),
        Column(f"{cur}/h", "right", 50, "price_h"),
    ]
    if show_usd:
        columns += [
            Column("USD/day", "right", 45, "usd"),
            Column("USD/h", "right", 88, "usd_h"),
        ]
    columns += [
        Column("spot/day", "right", 90, "spot"),
        Column("Reliab.", "right", 86, "reliability"),
        Column("Rating", "right", 80, "rating"),
        Column("CC", "left", 84, "cc"),
        Column("CUDA", "left", 82, "cuda"),
        Column("Threads", "right", 30, "threads"),
        Column("RAM", "right", 35, "ram"),
        Column("Disk", "right", 25, "disk"),
        Column("Net ↓/↑", "right", 20, "net"),
    ]
    if show_status:
        columns.append(Column("Status", "left", 97, "status"))
    return columns


def _complete_first(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Shell completion of the first word: a subcommand's name (filter words are free)."""
    from click.shell_completion import CompletionItem

    if ctx.params.get("filters"):
        return []
    return [CompletionItem(name) for name in _SUBCOMMANDS if name.startswith(incomplete)]


class MarketGroup(Group):
    """``clore market [OPTIONS] [FILTER]...`` lists servers; ``clore market record|stats|
    history ...`` runs a subcommand. Only the first word decides: a subcommand's name there
    runs it, anything else (options, filter words) is the listing's."""

    def _subcommand_first(self, ctx: click.Context, args: list[str]) -> bool:
        return bool(args) and args[0] in self.list_commands(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self._subcommand_first(ctx, args):
            # The group's own FILTER argument would swallow the subcommand and its
            # arguments: it is left out of this parse (``get_params``), its default kept.
            ctx.meta[_SUBCOMMAND_MODE] = ctx
            return super().parse_args(ctx, args)
        # The listing: options anywhere among the filter words, as for any command.
        ctx.allow_interspersed_args = True
        return click.Command.parse_args(self, ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        # Asked by the group's context or by its subcommand's (click builds the
        # subcommand's usage line from its parent's parameters).
        marked = ctx.meta.get(_SUBCOMMAND_MODE)
        node: click.Context | None = ctx
        while node is not None and node is not marked:
            node = node.parent
        if node is not None:
            return [p for p in params if p.name != "filters"]
        return params


@click.group(
    cls=MarketGroup,
    lazy=_SUBCOMMANDS,
    invoke_without_command=True,
    subcommand_metavar="| record|stats|history [ARGS]...",
    epilog=_FILTER_HELP,
)
@click.argument("filters", nargs=-1, metavar="[FILTER]...", shell_complete=_complete_first)
@click.option(
    "--sort",
    default="price",
    show_default=True,
    metavar="KEYS",
    help="Comma-separated fields; a leading - sorts descending (price,-reliability).",
)
@click.option(
    "--limit",
    "-n",
    type=Integer(min=0),
    default=20,
    show_default=True,
    help="Show at most N servers (0: all).",
)
@click.option("--all", "include_rented", is_flag=True, help="Include rented servers.")
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
def market(
    app: AppContext,
    sort: str,
    limit: int,
    include_rented: bool,
    currency: str,
    refresh: bool,
    max_age: float | None,
    filters: tuple[str, ...] = (),
) -> None:
    """List servers on the marketplace (available ones only unless --all), or record the
    market and show its past: record, stats, history.

    \b
    Examples:
      clore market gpu=4090 gpus>=2 'price<0.5usd/h' cc=US,DE --sort price,-reliability
      clore market record --interval 5m --for 24h    # snapshots into the data dir
      clore market stats --model 4090                # the market per exact model
      clore market history gpu=4090 --since 7d       # median, p10–p90, availability
    """
    if click.get_current_context().invoked_subcommand is not None:
        return
    from clore.cli._marketdata import load
    from clore.market import parse_filters, parse_sort, select
    from clore.rentals.choice import payable

    _refuse_misplaced_subcommand(filters)
    cur = resolve_currency(currency)
    words = parse_filters(filters)
    keys = parse_sort(sort)
    data = load(app, refresh=refresh, max_age=max_age)
    ctx = price_context(app, data, cur)
    selected = select(data.servers, words, ctx, sort=keys, include_rented=include_rented)
    matched = [s for s in selected if payable(s, cur)]
    elsewhere = [s for s in selected if not payable(s, cur)]
    shown = matched[:limit] if limit else matched
    out = app.out

    def human() -> None:
        show_usd = cur != USD
        age = app.clock.time() - data.fetched_at
        source = f"cached {duration(age)} ago" if data.cached else "fresh"
        pool = "servers" if include_rented else "available servers"
        listed = f"of {len(data.servers)} listed; {source}"
        rows = [_row(s, ctx, show_usd, include_rented) for s in shown]
        out.table(
            _columns(cur, show_usd, include_rented),
            rows,
            empty=f"No matching {pool} ({listed}).",
        )
        if shown:
            out.info(
                f"{len(shown)} of {len(matched)} matching {pool} shown ({listed}); "
                "prices per day and per hour"
            )
        if elsewhere:
            out.info(_elsewhere_note(elsewhere, cur))

    out.result(
        {
            "currency": cur,
            "rates": data.rates,
            "fetched_at": data.fetched_at,
            "cached": data.cached,
            "matched": len(matched),
            "not_payable": len(elsewhere),
            "servers": [server_doc(s, ctx) for s in shown],
        },
        human,
    )


def _elsewhere_note(servers: list[Server], currency: str) -> str:
    """``note: 12 more matching servers do not take BTC (--currency clore lists them)``."""
    from clore.market import CURRENCY_LABELS
    from clore.rentals.choice import payable

    others = [c for c in CURRENCY_LABELS if c != currency and any(payable(s, c) for s in servers)]
    hint = " or ".join(f"--currency {label(c).lower()}" for c in others)
    return f"note: {len(servers)} more matching servers do not take {label(currency)}" + (
        f" ({hint} lists them)" if hint else ""
    )


def _refuse_misplaced_subcommand(filters: tuple[str, ...]) -> None:
    """``clore market --all record``: a subcommand's name among the listing's words is a
    subcommand put after an option, not a filter; say so rather than "bad filter"."""
    for word in filters:
        if word in _SUBCOMMANDS:
            raise CliError(
                f"{word!r} is a subcommand: put it first (clore market {word} [OPTIONS]...)",
                EXIT_USAGE,
            )


@click.command()
@click.argument("server_id", type=Id(), metavar="ID")
@with_currency
@click.option("--refresh", is_flag=True, help="Ignore the cached marketplace listing.")
@json_option
@pass_app
def server(app: AppContext, server_id: int, currency: str, refresh: bool) -> None:
    """Show one server's details and the spot offers on it (yours marked)."""
    from clore.cli._marketdata import find_server, load

    cur = resolve_currency(currency)
    data = load(app, refresh=refresh, rates=False)
    found = find_server(data, server_id)
    spot = app.api().spot_marketplace(server_id)
    rates = {k: float(v) for k, v in spot.currency_rates_in_usd.items() if v} or data.rates
    ctx = PriceContext(cur, rates)
    out = app.out

    def human() -> None:
        _details(app, found, ctx)
        offers = sorted(spot.offers, key=lambda o: float(o.bid), reverse=True)
        if not offers:
            out.echo("No spot offers on this server.")
            return
        rows = [
            [
                str(o.offer_id),
                money(float(o.bid), o.currency),
                money(float(o.bid) / 24, o.currency),
                "active" if o.active else "waiting",
                "yours" if o.my else "",
            ]
            for o in offers
        ]
        columns = [Column("Offer"), Column("Bid/day", "right"), Column("Bid/h", "right")]
        columns += [Column("State"), Column("Mine")]
        styles = ["bold" if o.my else None for o in offers]
        out.echo()
        out.table(columns, rows, title="Spot offers", styles=styles)

    out.result({"server": server_doc(found, ctx), "spot": spot}, human)


def _details(app: AppContext, found: Server, ctx: PriceContext) -> None:
    from clore.rentals.choice import payable

    specs = found.specs
    usd = server_price(found, ctx, USD)
    cur = ctx.currency
    if payable(found, cur):
        price = day_and_hour(server_price(found, ctx), cur)
        spot = day_and_hour(found.price_per_day(cur, spot=True), cur)
    else:
        takes = ", ".join(label(c) for c in found.allowed_coins) or "other currencies"
        price = spot = f"— (does not take {label(cur)}: it takes {takes})"
    pairs = [
        ("GPU", f"{gpu_text(found)} ({number(specs.gpuram, 0, ' GB')} each)"),
        ("Status", "rented" if found.rented else "available"),
        ("Price", price),
        ("Price in USD", day_and_hour(usd, USD)),
        ("Spot minimum", spot),
        ("Max rental", duration(float(found.mrl) * 3600)),
        ("Reliability", f"{float(found.reliability) * 100:.1f}%"),
        ("Rating", f"{float(found.rating.avg):.1f} ({found.rating.cnt} votes)"),
        ("Country", found.country or "—"),
        ("CUDA", found.cuda or "—"),
        ("CPU", f"{specs.cpu or '—'} ({specs.cpus or '?'} cores/threads)"),
        ("RAM", number(specs.ram, 1, " GB")),
        ("Disk", f"{specs.disk_model or '—'} {number(specs.disk_size_gb, 0, ' GB')}"),
        ("Network", f"↓ {float(specs.net.down):.0f} / ↑ {float(specs.net.up):.0f} Mbit/s"),
        ("Currencies", ", ".join(found.allowed_coins) or "any"),
    ]
    app.out.fields(pairs, title=f"Server {found.id}")
