"""``clore spot bid SERVER --price P`` and ``clore spot price ORDER P [--walk]``.

Raising a bid is immediate. Lowering is limited by the API: at most ``max_step`` per
change and once per 600 s. Without ``--walk`` a refused lowering says exactly which limit
applies (the step, with the lowest bid it allows once the 600 s since the last lowering
have passed, or the time left); with ``--walk`` the bid steps down within both rules,
waiting between steps and showing progress.

A price may be in another currency than the one paid (``3usd`` for a BTC order): it is
converted at the USD rates of the server's ``spot_marketplace``. A bid under the server's
spot minimum (``too_low_price``, which does not say it) is told that minimum.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

import click

from clore.cli import _limits
from clore.cli._context import EXIT_API, EXIT_USAGE, AppContext, CliError, pass_app
from clore.cli._currency import resolve_currency, with_currency
from clore.cli._format import duration, order_doc, price_text
from clore.cli._group import Group
from clore.cli._orderopts import OrderSpec, bid_options
from clore.cli._output import json_option
from clore.cli._params import Id, parse_price
from clore.cli._placing import Placement, lookup_server, place

if TYPE_CHECKING:
    from clore import TooLowPriceError
    from clore.cli._announce import Announcing

__all__ = ["bid", "price", "spot", "walk_down"]

MAX_WALK_STEPS: Final = 200


@click.group(cls=Group, lazy={"keep": "clore.cli.spot_keep_cmd:keep"})
def spot() -> None:
    """Spot market: bid on a server, change your bid."""


@spot.command()
@click.argument("server_id", type=Id(), metavar="SERVER")
@click.option(
    "--price",
    "bid_text",
    required=True,
    metavar="PRICE",
    help="Your bid per day (0.00004btc; /h for per hour).",
)
@bid_options
@_limits.guard_options
@with_currency
@json_option
@pass_app
def bid(app: AppContext, /, server_id: int, bid_text: str, currency: str, **options: Any) -> None:
    """Place a spot bid on SERVER (a spot order; the highest bid runs).

    PRICE is per day in --currency unless suffixed (0.00004btc, 0.2usd/h: converted to
    --currency at the USD rates).
    """
    from clore import TooLowPriceError

    cur = resolve_currency(currency)
    _limits.check(options)
    parse_price(bid_text, "--price")  # its form before any request
    placement = Placement(
        currency=cur,
        spot_bid=_per_day(app, bid_text, cur, server_id, "--price"),
        lock_price=False,
        dry_run=options["dry_run"],
        yes=options["yes"],
        wait=options["wait"],
        timeout=options["timeout"],
    )
    spec = OrderSpec.from_params(options)
    candidate = lookup_server(app, server_id, placement)
    placement.limits, placement.rates = _limits.read(app, options, cur, placement.rates)
    placement.guard = bool(options["run_guard"])
    try:
        place(app, [candidate], spec, placement)
    except TooLowPriceError as exc:
        assert placement.spot_bid is not None
        raise _too_low(app.api(), exc, server_id, placement.spot_bid, cur) from exc


def _per_day(app: AppContext, text: str, currency: str, server_id: int, option: str) -> float:
    """A bid per day in ``currency`` from ``0.0001``, ``0.0001btc``, ``0.000004btc/h`` or
    another currency's amount (``3usd``), converted at the server's ``spot_marketplace``
    USD rates and rounded to the API's 8 decimals; exit 2 when it cannot be."""
    from clore.market import convert, label

    amount = parse_price(text, option)
    named = amount.in_currency(currency)
    if named == currency:
        return amount.per_day
    market = app.api(auth=False).spot_marketplace(server_id)
    rates = {k: float(v) for k, v in market.currency_rates_in_usd.items() if v}
    converted = convert(amount.per_day, named, currency, rates)
    if converted is None:
        raise CliError(
            f"{option}: {text!r} is in {label(named)}, which cannot be converted to "
            f"{label(currency)} (no USD rate); give it in {label(currency)}",
            EXIT_USAGE,
        )
    value = round(converted, 8)
    if value <= 0:
        raise CliError(f"{option}: {text!r} is less than 0.00000001 {label(currency)}", 2)
    app.out.info(f"{text} ≈ {price_text(value, currency)} at the current USD rates")
    return value


def _too_low(
    client: Announcing, exc: TooLowPriceError, server_id: int, bid: float, currency: str
) -> Exception:
    """``too_low_price`` with the server's spot minimum, looked up (the API omits it)."""
    from clore import CloreError

    try:
        minimum = client.spot_marketplace(server_id).server.min_pricing.get(currency)
    except CloreError:
        return exc
    if minimum is None:
        return exc
    told = exc.with_minimum(float(minimum), currency)
    return CliError(
        f"bid {price_text(bid, currency)} is below the server's spot minimum of "
        f"{price_text(float(minimum), currency)} ({told.error}; see `clore server {server_id}`)",
        EXIT_API,
    )


def _round_up(value: float) -> float:
    """Round up to 8 decimals (the API's precision) so a step never exceeds ``max_step``."""
    return math.ceil(value * 1e8 - 1e-6) / 1e8


def walk_down(app: AppContext, order_id: int, current: float, target: float, currency: str) -> int:
    """Lower a bid from ``current`` to ``target`` within max_step and the 600 s rule.

    Returns the number of accepted changes. Waits on the app's clock between steps.
    """
    from clore import ExceededMaxStepError, SpotPriceLoweringTooSoonError

    client = app.api()
    out = app.out
    step: float | None = None
    changes = 0
    for _ in range(MAX_WALK_STEPS):
        if current <= target:
            return changes
        wanted = target if step is None else max(target, _round_up(current - step))
        try:
            client.set_spot_price(order_id, wanted)
        except ExceededMaxStepError as exc:
            if not exc.max_step or exc.max_step <= 0 or step == exc.max_step:
                raise
            step = exc.max_step
            continue
        except SpotPriceLoweringTooSoonError as exc:
            # wait_seconds is on this client's clock; time_to_lowering is the server's
            # (fewer real seconds against a time-scaled sandbox).
            wait = exc.wait_seconds if exc.wait_seconds is not None else 600.0
            message = (
                f"bid {price_text(current, currency)} → target {price_text(target, currency)}: "
                f"next lowering allowed in {duration(wait)}"
            )
            out.info(message)
            with out.waiting(message):
                app.clock.sleep(max(1.0, wait + 1.0))
            continue
        changes += 1
        out.info(
            f"lowered the bid of order {order_id}: {price_text(current, currency)} → "
            f"{price_text(wanted, currency)}"
        )
        current = wanted
        step = None  # the allowed step follows the new bid; learn it again
    raise CliError(f"gave up after {MAX_WALK_STEPS} attempts; the bid is {current}", 1)


@spot.command()
@click.argument("order_id", type=Id(), metavar="ORDER")
@click.argument("new_price", metavar="PRICE")
@click.option("--walk", is_flag=True, help="Step down over time within the API's limits.")
@json_option
@pass_app
def price(app: AppContext, order_id: int, new_price: str, walk: bool) -> None:
    """Set the bid per day of spot ORDER (raising is immediate; see --walk for lowering).

    PRICE is per day in the order's currency (0.00003, 0.00003btc; /h for per hour); an
    amount in another currency (3usd) is converted at the current USD rates.
    """
    from clore import ExceededMaxStepError, SpotPriceLoweringTooSoonError, TooLowPriceError

    parse_price(new_price, "PRICE")  # its form before any request; its currency below
    client = app.api()
    order = client.get_order(order_id)
    if not order.spot:
        raise CliError(f"order {order_id} is an on-demand order, not a spot bid", 2)
    if order.expired:
        raise CliError(f"order {order_id} has ended", 1)
    cur = order.currency or "bitcoin"
    target = _per_day(app, new_price, cur, order.si, "PRICE")
    current = float(order.price)
    if target >= current or not walk:
        try:
            client.set_spot_price(order_id, target)
        except ExceededMaxStepError as exc:
            limit = exc.max_step
            lowest = None if limit is None else _round_up(current - limit)
            # The step is checked before the 600 s window: the window may still be shut
            # (lowered by another machine, say); this client knows of no lowering in it.
            raise CliError(
                f"lowering {price_text(current, cur)} → {price_text(target, cur)} exceeds the "
                f"max step of {price_text(limit, cur)}; the lowest bid allowed is "
                f"{price_text(lowest, cur)}, once 600 s have passed since the bid was last "
                f"lowered (--walk steps down within both rules)",
                1,
            ) from None
        except TooLowPriceError as exc:
            raise _too_low(client, exc, order.si, target, cur) from exc
        except SpotPriceLoweringTooSoonError as exc:
            left, wait = exc.time_to_lowering, exc.wait_seconds
            when = f"{duration(left)} ({left or 0:.0f} s)"
            if left is not None and wait is not None and abs(wait - left) >= 0.5:
                # A time-scaled server: say how long to really wait.
                when = f"{duration(wait)} ({left:.0f} s of the server's time)"
            raise CliError(
                f"a bid may be lowered once every 600 s; the next lowering is allowed in "
                f"{when} (or use --walk)",
                1,
            ) from None
        verb = "raised" if target > current else "lowered" if target < current else "kept"
        app.out.info(
            f"{verb} the bid of order {order_id}: {price_text(current, cur)} → "
            f"{price_text(target, cur)}"
        )
    else:
        walk_down(app, order_id, current, target, cur)
    final = client.get_order(order_id)
    now = app.server_time()
    app.out.result(
        {"order": order_doc(final, now)},
        lambda: app.out.echo(f"order {order_id} bid: {price_text(float(final.price), cur)}"),
    )
