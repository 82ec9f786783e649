"""``clore rent ID`` and ``clore rent --cheapest FILTER...``: create an order, optionally wait.

``place`` is shared with ``clore spot bid``: confirm (server, price per day and hour,
balance), create the order exactly once through the SDK, move on to the next candidate
after a lost race (``server-already-rented``, ``price-changed``), stop when the order may
exist (``OrderUnconfirmedError``), wait until SSH is ready.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from clore.cli import _limits
from clore.cli._context import EXIT_API, AppContext, CliError, pass_app
from clore.cli._currency import resolve_currency, with_currency
from clore.cli._format import day_and_hour, gpu_text, order_doc, price_text, server_doc
from clore.cli._orderopts import OrderSpec, order_options, redact
from clore.cli._output import json_option
from clore.cli._params import Integer, parse_id
from clore.market import USD, PriceContext, label, server_price

if TYPE_CHECKING:
    from clore import Order, Server
    from clore._wire import CreateOrderRequest
    from clore.workflows import Limits

__all__ = ["Placement", "lookup_server", "parse_bid", "place", "rent"]


@dataclass
class Placement:
    """What ``place`` is asked to do, beyond the order spec."""

    currency: str
    spot_bid: float | None = None
    lock_price: bool = False
    dry_run: bool = False
    yes: bool = False
    wait: bool = False
    timeout: float = 600.0
    tries: int = 1
    rates: dict[str, float] | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    limits: Limits | None = None
    guard: bool = False


def _listed_price(server: Server | None, placement: Placement) -> float | None:
    if server is None:
        return None
    table = server.price.spot if placement.spot_bid is not None else server.price.on_demand
    value = table.get(placement.currency)
    return None if value is None else float(value)


def _request(
    server_id: int, spec: OrderSpec, placement: Placement, price: float | None
) -> CreateOrderRequest:
    from clore._validate import validate_create_order

    return validate_create_order(
        server_id=server_id,
        image=spec.image,
        order_type="spot" if placement.spot_bid is not None else "on-demand",
        currency=placement.currency,
        spotprice=placement.spot_bid,
        ports=spec.ports,
        ssh_password=spec.ssh_password,
        ssh_key=spec.ssh_key,
        jupyter_token=spec.jupyter_token,
        env=spec.env,
        command=spec.command,
        required_price=price if placement.lock_price else None,
    )


def _confirm(app: AppContext, server_id: int, server: Server | None, placement: Placement) -> None:
    cur = placement.currency
    out = app.out
    what = f"server {server_id}"
    if server is not None:
        what += f": {gpu_text(server)}, {server.specs.gpuram} GB each, {server.country or '?'}"
    if placement.spot_bid is not None:
        day: float | None = placement.spot_bid
        kind = "spot bid"
    else:
        day = _listed_price(server, placement)
        kind = "on-demand"
    ctx = PriceContext(cur, placement.rates)
    usd = None if day is None else _usd(day, cur, ctx)
    balance = next((w for w in app.api().wallets() if w.name == cur), None)
    out.info(f"Rent {what}")
    price_line = day_and_hour(day, cur) + (f" ≈ {usd:.2f} USD/day" if usd is not None else "")
    out.info(f"  price    {price_line} ({kind})")
    if balance is not None and balance.balance is not None:
        left = float(balance.balance)
        runway = ""
        if day:
            # The wallet pays the renter fee on top of the price.
            order_type = "spot" if placement.spot_bid is not None else "on-demand"
            fee = app.api().renter_fees().fee_percent(order_type, cur)
            runway = (
                f" — about {left / (day * (1 + fee / 100)):.1f} days at this price "
                f"plus the {fee:g}% renter fee"
            )
        out.info(f"  balance  {left:.8g} {label(cur)}{runway}")
    try:
        confirmed = click.confirm("Proceed?", default=False, err=True)
    except click.Abort:
        click.echo(err=True)
        confirmed = False
    if not confirmed:
        raise CliError("not confirmed; nothing was rented (--yes skips the question)", 1)


def _usd(day: float, currency: str, ctx: PriceContext) -> float | None:
    from clore.market import convert

    return convert(day, currency, USD, ctx.rates)


def _race_lost(exc: Exception) -> bool:
    from clore import PriceChangedError, ServerAlreadyRentedError, ServerOfflineError

    return isinstance(exc, ServerAlreadyRentedError | PriceChangedError | ServerOfflineError)


def place(
    app: AppContext,
    candidates: list[tuple[int, Server | None]],
    spec: OrderSpec,
    placement: Placement,
) -> None:
    """Create one order on the first candidate that accepts it, then report (and wait)."""
    out = app.out
    if placement.dry_run:
        server_id, server = candidates[0]
        body = _request(server_id, spec, placement, _listed_price(server, placement))
        _print_dry_run(app, body, server, placement)
        return
    attempts = candidates[: max(1, placement.tries)]
    for index, (server_id, server) in enumerate(attempts):
        price = _listed_price(server, placement)
        body = _request(server_id, spec, placement, price)
        if not placement.yes:
            _confirm(app, server_id, server, placement)
        try:
            order = app.api().create_order(**_sdk_arguments(body))
        except Exception as exc:
            _stop_if_in_doubt(exc)
            if server is None:
                _unlisted(app, server_id, exc)
            if not _race_lost(exc) or index + 1 >= len(attempts):
                raise
            reason = getattr(exc, "error", None) or type(exc).__name__
            nxt = attempts[index + 1][0]
            out.info(f"server {server_id} was not rented ({reason}); trying server {nxt} next")
            placement.skipped.append({"server_id": server_id, "error": reason})
            continue
        _after_create(app, order, server, spec, placement)
        return


def _stop_if_in_doubt(exc: Exception) -> None:
    """The SDK could not tell whether the order exists: stop, and say how to find out.

    Never the next candidate: the order may be running (and billing) already. The SDK
    raises a refusal only when no attempt may have acted, so only those move on.
    """
    from clore import OrderUnconfirmedError

    if isinstance(exc, OrderUnconfirmedError):
        raise CliError(
            f"{exc}; not tried on another server: `clore orders` lists the order if it "
            f"was created (rent again only if it is not there)",
            EXIT_API,
        ) from exc


def _unlisted(app: AppContext, server_id: int, exc: Exception) -> None:
    """After a code 2 on a server never looked up (--yes): exit 4 if it is not listed."""
    from clore import InvalidInputError
    from clore.cli._marketdata import find_server, load

    if isinstance(exc, InvalidInputError):
        find_server(load(app, rates=False), server_id)


def _sdk_arguments(body: CreateOrderRequest) -> dict[str, Any]:
    return {
        "server_id": body.renting_server,
        "image": body.image,
        "order_type": body.type,
        "currency": body.currency,
        "spotprice": body.spotprice,
        "ports": body.ports,
        "ssh_password": body.ssh_password,
        "ssh_key": body.ssh_key,
        "jupyter_token": body.jupyter_token,
        "env": body.env,
        "command": body.command,
        "required_price": body.required_price,
    }


def _print_dry_run(
    app: AppContext, body: CreateOrderRequest, server: Server | None, placement: Placement
) -> None:
    import msgspec

    shown = redact(msgspec.to_builtins(body))
    ctx = PriceContext(placement.currency, placement.rates)
    document = {
        "dry_run": True,
        "method": "POST",
        "endpoint": "create_order",
        "body": shown,
        "server": None if server is None else server_doc(server, ctx),
    }

    def human() -> None:
        app.out.echo("Dry run: nothing was sent. The request would be:")
        app.out.echo("POST /v1/create_order")
        app.out.echo(msgspec.json.format(msgspec.json.encode(shown), indent=2).decode())

    app.out.result(document, human)


def _after_create(
    app: AppContext, order: Order, server: Server | None, spec: OrderSpec, placement: Placement
) -> None:
    import msgspec

    from clore.cli._marketdata import invalidate

    invalidate(app)
    out = app.out
    limits = placement.limits
    gpu = f" ({gpu_text(server)})" if server is not None else ""
    price = day_and_hour(float(order.price), order.currency or placement.currency)
    if order.spot:
        out.info(f"Placed a spot bid on server {order.si}{gpu} as order {order.id}: {price}")
    else:
        out.info(f"Rented server {order.si}{gpu} as order {order.id}: {price}, on-demand")
    if limits:
        # Before --wait, so an interrupted wait leaves them registered for `clore guard`.
        _limits.record(app, order, limits, foreground=placement.guard)
    why = "provisioning"
    if order.spot and not _bid_runs(app, order):
        why = "a spot bid runs only while it is the highest"
    if placement.wait:
        started = time.monotonic()
        with out.waiting(f"waiting for order {order.id} to be ready ({why})"):
            order = app.api().wait_for_order(order.id, timeout=placement.timeout)
        out.info(f"Order {order.id} is ready after {time.monotonic() - started:.1f} s")
    now = app.server_time()
    jupyter = spec.jupyter_url(order.http_url)
    document = {
        "order": order_doc(order, now),
        "jupyter_url": jupyter,
        "jupyter_token": spec.jupyter_token if spec.serves_jupyter else None,
        "skipped": placement.skipped,
        "limits": None if not limits else msgspec.to_builtins(limits),
    }

    def human() -> None:
        if order.ready:
            out.echo(f"ssh:      {order.ssh_command()}")
            if order.http_url:
                out.echo(f"http:     {order.http_url}")
            if jupyter:
                out.echo(f"jupyter:  {jupyter}")
        else:
            out.echo(f"Order {order.id} is provisioning; `clore order {order.id}` shows its state.")
            note = spec.token_note()
            if note:  # the API never returns the token: this is the only chance to see it
                out.echo(note)

    out.result(document, human)
    if placement.guard and limits:
        _limits.guard(app, order, limits)


def _bid_runs(app: AppContext, order: Order) -> bool:
    """Whether a new spot bid is the running one; says why not (so a wait is not a mystery)."""
    from clore import CloreError

    try:
        market = app.api().spot_marketplace(order.si)
    except CloreError:
        return True  # unknown: nothing to say
    mine = next((o for o in market.offers if o.offer_id == order.id), None)
    if mine is None or mine.active:
        return True
    winning = market.winning
    cur = order.currency or "bitcoin"
    if winning is not None:
        where = f"the highest bid is {price_text(float(winning.bid), cur)}"
    else:
        where = "no bid runs now: the server is rented on demand or offline"
    app.out.warn(f"bid of order {order.id} is not running: {where}; it starts when it is highest")
    return False


def _cheapest(
    app: AppContext, words: tuple[str, ...], placement: Placement, spot: bool
) -> list[tuple[int, Server | None]]:
    from clore.cli._marketdata import load
    from clore.market import parse_filters, parse_sort, select

    filters = parse_filters(words)
    data = load(app, refresh=True)
    placement.rates = data.rates
    ctx = PriceContext(placement.currency, data.rates)
    payable = [
        s
        for s in select(
            data.servers, filters, ctx, sort=parse_sort("spot_price" if spot else "price")
        )
        if s.accepts(placement.currency)
        and placement.currency in (s.price.spot if spot else s.price.on_demand)
    ]
    if not payable:
        wanted = " ".join(words) or "(no filters)"
        raise CliError(
            f"no available server matches {wanted} and takes {label(placement.currency)}", 4
        )
    best = payable[0]
    price = server_price(best, ctx, spot=spot)
    app.out.info(
        f"cheapest of {len(payable)} matching: server {best.id} ({gpu_text(best)}) at "
        f"{price_text(price, placement.currency)}"
    )
    return [(s.id, s) for s in payable]


@click.command()
@click.argument("target", nargs=-1, metavar="ID | --cheapest [FILTER]...")
@click.option(
    "--cheapest", is_flag=True, help="Rent the cheapest available server matching FILTERs."
)
@click.option(
    "--tries",
    type=Integer(1, 10),
    default=3,
    show_default=True,
    help="With --cheapest: candidates to try when a server is taken meanwhile.",
)
@order_options
@click.option("--spot", is_flag=True, help="Place a spot bid instead of an on-demand order.")
@click.option("--bid", metavar="PRICE", help="Spot bid per day (e.g. 0.0001btc or 0.00001btc/h).")
@_limits.guard_options
@with_currency
@json_option
@pass_app
def rent(
    app: AppContext,
    /,
    target: tuple[str, ...],
    cheapest: bool,
    tries: int,
    spot: bool,
    bid: str | None,
    currency: str,
    **options: Any,
) -> None:
    """Rent a server by ID, or the cheapest available one matching FILTERs.

    \b
    Examples:
      clore rent 18811 --wait
      clore rent --cheapest gpu=4090 gpus=1 --ports 22:tcp,8888:http --wait --yes
      clore rent 18811 --spot --bid 0.00004btc
      clore rent 18811 --max-spend 0.0005btc --max-time 8h --guard
    """
    cur = resolve_currency(currency)
    _limits.check(options)
    spec = OrderSpec.from_params(options)
    if bid is not None and not spot:
        raise CliError("--bid is only for spot orders: add --spot", 2)
    if spot and bid is None:
        raise CliError("--spot needs --bid PRICE (the bid per day)", 2)
    placement = Placement(
        currency=cur,
        spot_bid=parse_bid(bid, cur) if spot else None,
        lock_price=options["lock_price"],
        dry_run=options["dry_run"],
        yes=options["yes"],
        wait=options["wait"],
        timeout=options["timeout"],
        tries=tries if cheapest else 1,
    )
    if cheapest:
        candidates = _cheapest(app, target, placement, spot)
    else:
        if len(target) != 1 or not target[0].strip().isdigit():
            raise CliError("give one server ID, or --cheapest with filters", 2)
        server_id = parse_id(target[0], "ID")
        candidates = [(server_id, lookup_server(app, server_id, placement))]
    placement.limits, placement.rates = _limits.read(app, options, cur, placement.rates)
    placement.guard = bool(options["run_guard"])
    place(app, candidates, spec, placement)


def lookup_server(app: AppContext, server_id: int, placement: Placement) -> Server | None:
    """The listed server when a prompt or --lock-price needs it; None otherwise."""
    needs_listing = placement.lock_price or not (placement.yes or placement.dry_run)
    if not needs_listing:
        return None
    from clore.cli._marketdata import find_server, load

    data = load(app, refresh=placement.lock_price)
    placement.rates = data.rates
    return find_server(data, server_id)


def parse_bid(text: str | None, currency: str) -> float:
    """A bid per day in ``currency`` from ``0.0001``, ``0.0001btc`` or ``0.000004btc/h``."""
    from clore.market import parse_amount

    if text is None:
        raise CliError("a bid price is required", 2)
    try:
        amount = parse_amount(text)
    except ValueError as exc:
        raise CliError(f"bid: {exc}", 2) from None
    if amount.currency not in (None, currency):
        raise CliError(
            f"bid {text!r} is in {label(amount.currency or '')} but the order is paid in "
            f"{label(currency)}; use --currency {label(amount.currency or '').lower()}",
            2,
        )
    if amount.per_day <= 0:
        raise CliError("bid must be greater than zero", 2)
    return amount.per_day
