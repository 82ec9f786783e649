"""``clore spot keep ORDER --max-bid P``: keep a spot rental winning, cheaply, within a cap.

When outbid, the bid goes just above the winner (never above ``--max-bid``); when alone,
it walks down towards the server minimum within the API's step and 600 s rules. With
``--recover``, a lost order (or one the cap cannot keep) is replaced by a spot bid on the
next cheapest matching server, with the same image, ports and env. Recovery places new
bids while nobody watches, so ``--recover`` needs ``--yes`` (as ``watch --rent`` does):
without it the command stops before any request (exit 2).

The keeper's state (``spot-ORDER.json`` under the workflows directory) outlives a run: a
plain keep that saw the order end leaves it, and a later ``--recover`` starts from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from clore.cli._automation import (
    check_amount,
    check_limits,
    deadline,
    interval_option,
    jsonl_option,
    limit_options,
    parse_limits,
    parse_money,
    run_events,
    until_options,
)
from clore.cli._context import AppContext, CliError, pass_app
from clore.cli._orderopts import OrderSpec, container_options
from clore.cli._output import json_lines_option
from clore.cli._params import Id

if TYPE_CHECKING:
    from clore import Order
    from clore.workflows import Event, KeeperState, StateFile

__all__ = ["keep"]


@click.command()
@click.argument("order_id", type=Id(), metavar="ORDER")
@click.option(
    "--max-bid",
    required=True,
    metavar="PRICE",
    help="Never bid more than this per day (0.0003btc, 0.4usd/h with rates).",
)
@click.option(
    "--step",
    metavar="PRICE",
    help="Outbid the winner by this much (default 1% of the winning bid).",
)
@interval_option(30.0, "Seconds between checks.")
@click.option(
    "--recover",
    is_flag=True,
    help="Re-rent on the next cheapest matching server when the order is lost.",
)
@click.option(
    "--match",
    "match_words",
    multiple=True,
    metavar="FILTER",
    help="Filter for --recover candidates (default: same GPU model, >= GPU count).",
)
@container_options(recovery=True)
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Allow --recover to place new spot bids unattended (required with --recover).",
)
@click.option(
    "--currency",
    "-c",
    default=None,
    metavar="C",
    help="Currency of --max-bid/--step without suffix (default: the order's).",
)
@limit_options
@until_options
@jsonl_option
@json_lines_option
@pass_app
def keep(
    app: AppContext,
    /,
    order_id: int,
    max_bid: str,
    step: str | None,
    interval: float,
    recover: bool,
    match_words: tuple[str, ...],
    currency: str | None,
    max_spend: str | None,
    max_time: str | None,
    until: str | None,
    for_: str | None,
    jsonl: bool,
    yes: bool,
    **options: Any,
) -> None:
    """Keep spot ORDER winning within --max-bid; lower the bid when nobody competes.

    Events are printed one line each on stdout; --json (or --jsonl) prints each as a JSON
    object per line instead.

    \b
    Examples:
      clore spot keep 4711 --max-bid 0.0003btc
      clore spot keep 4711 --max-bid 0.0003btc --recover --yes --env HF_TOKEN=... --max-spend 0.002
    """
    from clore import OrderNotFoundError
    from clore.cli._currency import resolve_currency
    from clore.market import PriceContext, compile_filters, parse_filters
    from clore.workflows import KeeperState, SpotKeeper, StateFile, workflows_dir

    named = [check_amount(max_bid, "--max-bid"), check_amount(step, "--step")]
    named.append(check_limits(max_spend, max_time))
    source = resolve_currency(currency) if currency else None
    matcher = parse_filters(match_words)
    stop = deadline(app, until, for_)
    if recover and not yes:
        raise CliError(
            "--recover places new spot bids on other servers while unattended: add --yes "
            "to allow it (nothing was sent)",
            2,
        )
    client = app.client()
    try:
        order = client.get_order(order_id)
    except OrderNotFoundError:
        raise CliError(f"order {order_id} is not among your orders", 4) from None
    if not order.spot:
        raise CliError(f"order {order_id} is on-demand; spot keep needs a spot order", 2)
    path = workflows_dir() / f"spot-{order_id}.json"
    if order.expired and not recover and _nothing_kept(StateFile(path), KeeperState):
        raise CliError(f"order {order_id} has already ended (--recover bids on another)", 1)
    # Prices are compared with the order's bids, so every amount is converted to its currency.
    cur = order.currency
    rates = _rates(app, order, [*named, source])
    cap = parse_money(max_bid, cur, "--max-bid", rates=rates, default=source)
    increment = parse_money(step, cur, "--step", rates=rates, default=source)
    limits = parse_limits(max_spend, max_time, cur, rates=rates)
    spec = _recovery_spec(app, order, options) if recover else None
    rent = None if spec is None else spec.rent_spec("spot", order.currency)
    match = compile_filters(matcher, PriceContext(cur, rates)) if match_words else None
    app.out.info(f"keeping order {order_id} on server {order.si}; state: {path}")
    keeper = SpotKeeper(
        client,
        app.clock,
        order_id,
        max_bid=float(cap or 0),
        step=increment,
        interval=interval,
        recover=recover,
        rent=rent,
        match=match,
        limits=limits,
        until=stop,
        state=StateFile(path),
    )
    remember = None if spec is None else _remember_recovered(app, spec)
    # A stream: every event is a result (stdout), as JSON Lines with --json or --jsonl.
    json_lines = jsonl or app.out.json_mode
    run_events(app, keeper.run(), jsonl=json_lines, state_path=path, on_event=remember)


def _nothing_kept(file: StateFile, kind: type[KeeperState]) -> bool:
    """True when the state holds no order to keep (none yet, or its order was lost and
    not replaced): a keep without --recover has nothing to do then."""
    try:
        state = file.read(kind)
    except ValueError:  # a damaged file: the keeper itself reports it
        return False
    return state is None or state.order_id is None


def _rates(app: AppContext, order: Order, named: list[str | None]) -> dict[str, float] | None:
    """USD rates (from the order's spot market) when an amount is in another currency."""
    if all(name in (None, order.currency) for name in named):
        return None
    market = app.api().spot_marketplace(order.si)
    return {k: float(v) for k, v in market.currency_rates_in_usd.items() if v} or None


def _recovery_spec(app: AppContext, order: Order, options: dict[str, Any]) -> OrderSpec:
    """What ``--recover`` rents: the options given, else the order's image and ports."""
    ports = options["ports"] if options["ports"] is not None else order.forwarded_ports or None
    spec = OrderSpec.from_params(options, image=options["image"] or order.image, ports=ports)
    line = spec.token_note()
    if line:
        app.out.info(f"{line} (for a recovered order; the API never returns it)")
    return spec


def _remember_recovered(app: AppContext, spec: OrderSpec) -> Callable[[Event], None]:
    """Keep how each recovered order is logged in to (key, password, Jupyter token), as
    ``rent`` does for its orders; a file that cannot be written is a warning."""

    def remember(event: Event) -> None:
        if event.kind != "recovered" or event.order is None:
            return
        from clore.rentals import LoginsFileError, RentalLogins

        token = spec.jupyter_token if spec.serves_jupyter else None
        if spec.ssh_key_path is None and not spec.ssh_password and not token:
            return
        try:
            RentalLogins().remember(event.order, public_key=spec.ssh_key_path,
                                    password=spec.ssh_password, jupyter_token=token)  # fmt: skip
        except (OSError, LoginsFileError) as exc:
            app.out.warn(f"could not remember how to log in to order {event.order.id}: {exc}")

    return remember
