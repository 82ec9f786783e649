"""``clore host list | config NAME | set NAME``: the servers you host on Clore."""

from __future__ import annotations

from typing import Any

import click

from clore.cli._context import AppContext, CliError, pass_app
from clore.cli._format import amount, duration
from clore.cli._group import Group
from clore.cli._output import Column, json_option
from clore.cli._params import Integer, parse_price
from clore.market import label

__all__ = ["host"]

_RENTAL_STATUS = {0: "free", 1: "spot", 2: "on-demand"}


def _prices(table: dict[str, Any]) -> str:
    if not table:
        return "—"
    return ", ".join(f"{amount(float(v), k)} {label(k)}" for k, v in table.items())


@click.group(cls=Group)
def host() -> None:
    """The servers you host: list them, read and change their settings (prices per day)."""


@host.command("list")
@json_option
@pass_app
def list_servers(app: AppContext) -> None:
    """List your hosted servers with their prices per day and visibility."""
    found = app.api().my_servers()
    rows = [
        [
            s.name or "—",
            "—" if s.id is None else str(s.id),
            "online" if s.online else "offline",
            "yes" if s.connected else "no",
            s.visibility,
            _prices(s.pricing),
            _prices(s.min_spot_pricing),
        ]
        for s in found
    ]
    columns = [Column("Name"), Column("ID", "right"), Column("Status"), Column("Connected")]
    columns += [Column("Visibility"), Column("On-demand /day"), Column("Spot min /day")]

    def human() -> None:
        if rows:
            app.out.table(columns, rows)
        else:
            app.out.echo("You host no servers.")

    app.out.result({"servers": found}, human)


@host.command("config")
@click.argument("name")
@json_option
@pass_app
def show_config(app: AppContext, name: str) -> None:
    """Show the configuration of hosted server NAME."""
    from clore import InvalidInputError

    try:
        cfg = app.api().server_config(name)
    except InvalidInputError:
        _require_hosted(app, name)
        raise
    pairs = [
        ("ID", "—" if cfg.id is None else str(cfg.id)),
        (
            "Status",
            ("online" if cfg.online else "offline") + (", connected" if cfg.connected else ""),
        ),
        ("Visibility", cfg.visibility),
        ("Rented", _RENTAL_STATUS.get(cfg.rental_status, str(cfg.rental_status))),
        ("On-demand", _prices(cfg.pricing) + " per day"),
        ("Spot minimum", _prices(cfg.spot_pricing) + " per day"),
        ("Max rental", f"{float(cfg.mrl):g} h ({duration(float(cfg.mrl) * 3600)})"),
    ]
    app.out.result(
        {"config": cfg}, lambda: app.out.fields(pairs, title=f"Server {cfg.name or name}")
    )


def _price_words(words: tuple[str, ...], option: str) -> tuple[float | None, dict[str, float]]:
    """``--price 0.0003btc --price 120clore`` -> (legacy price, {currency: per day})."""
    legacy: float | None = None
    per_currency: dict[str, float] = {}
    for word in words:
        amount = parse_price(word, option)
        if amount.currency is None:
            legacy = amount.per_day
        else:
            per_currency[amount.currency] = amount.per_day
    return legacy, per_currency


@host.command("set")
@click.argument("name")
@click.option(
    "--price",
    "prices",
    multiple=True,
    metavar="PRICE",
    help="On-demand price per day, e.g. 0.0003btc or 150clore (/h for per hour); repeatable.",
)
@click.option(
    "--spot-price",
    "spot_prices",
    multiple=True,
    metavar="PRICE",
    help="Minimum spot price per day, same form; repeatable.",
)
@click.option("--mrl", type=Integer(min=1), metavar="HOURS", help="Maximum rental length.")
@click.option("--visible/--hidden", default=None, help="Show or hide the server on the market.")
@json_option
@pass_app
def set_settings(
    app: AppContext,
    name: str,
    prices: tuple[str, ...],
    spot_prices: tuple[str, ...],
    mrl: int | None,
    visible: bool | None,
) -> None:
    """Change hosted server NAME's prices, maximum rental length or visibility.

    Prices without a currency use the API's legacy fields; with a suffix (btc, clore, usd)
    they are set per currency. Mixing both forms is refused.
    """
    on_demand, od_cur = _price_words(prices, "--price")
    spot, spot_cur = _price_words(spot_prices, "--spot-price")
    per_currency: dict[str, dict[str, float | bool]] = {}
    for cur, value in od_cur.items():
        per_currency.setdefault(cur, {})["on_demand"] = value
    for cur, value in spot_cur.items():
        per_currency.setdefault(cur, {})["spot"] = value
    if per_currency and (on_demand is not None or spot is not None):
        raise CliError("give every price a currency suffix, or none of them", 2)
    if not (prices or spot_prices) and mrl is None and visible is None:
        raise CliError(
            "nothing to change: pass --price, --spot-price, --mrl or --visible/--hidden", 2
        )
    from clore import InvalidInputError

    try:
        app.api().set_server_settings(
            name,
            availability=visible,
            mrl=mrl,
            on_demand=on_demand,
            spot=spot,
            per_currency=per_currency or None,
        )
    except InvalidInputError:
        _require_hosted(app, name)
        raise
    changed: dict[str, Any] = {"name": name}
    if visible is not None:
        changed["availability"] = visible
    if mrl is not None:
        changed["mrl"] = mrl
    if on_demand is not None:
        changed["on_demand"] = on_demand
    if spot is not None:
        changed["spot"] = spot
    if per_currency:
        changed["per_currency"] = per_currency
    words = []
    if visible is not None:
        words.append("visible on the marketplace" if visible else "hidden from the marketplace")
    if mrl is not None:
        words.append(f"maximum rental {mrl} h")
    if on_demand is not None:
        words.append(f"on-demand {on_demand:g}/day (legacy on_demand field)")
    if spot is not None:
        words.append(f"spot minimum {spot:g}/day (legacy spot field)")
    for cur, fields in per_currency.items():
        for kind, value in fields.items():
            what = "on-demand" if kind == "on_demand" else "spot minimum"
            words.append(f"{what} {amount(float(value), cur)} {label(cur)}/day")
    summary = "; ".join(words)
    app.out.result({"updated": changed}, lambda: app.out.echo(f"Updated server {name}: {summary}"))


def _require_hosted(app: AppContext, name: str) -> None:
    """The API answers code 2 for a server that is not yours: say so (exit 4) when it is not."""
    names = [s.name for s in app.api().my_servers() if s.name]
    if name not in names:
        yours = ", ".join(names) if names else "none"
        raise CliError(f"you host no server named {name!r} (yours: {yours})", 4)
