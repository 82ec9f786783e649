"""How the order-creating commands (``rent``, ``spot bid``) place an order, around
``clore.rentals.place``: the confirmation (server, price per day and hour, balance and
runway), ``--dry-run`` (``RentSpec.preview``: exactly the body create_order would send,
secrets redacted), the report of a lost race, the stop when the order may exist, the
limits registered, ``--wait`` until SSH is ready, and what to do next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from clore.cli import _limits
from clore.cli._context import EXIT_API, EXIT_USAGE, AppContext, CliError
from clore.cli._format import day_and_hour, gpu_text, order_doc, price_text, server_doc
from clore.cli._orderopts import OrderSpec, redact
from clore.market import USD, PriceContext, label

if TYPE_CHECKING:
    from clore import CreateOrderRequest, Order, Server
    from clore.rentals import Candidate, Skipped
    from clore.workflows import Limits

__all__ = ["Placement", "lookup_server", "parse_bid", "place"]


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

    @property
    def spot(self) -> bool:
        return self.spot_bid is not None


def place(
    app: AppContext, candidates: list[Candidate], spec: OrderSpec, placement: Placement
) -> None:
    """Create one order on the first candidate that accepts it, then report (and wait)."""
    from clore import InvalidInputError
    from clore.rentals import place as place_order

    rent = spec.rent_spec(
        "spot" if placement.spot else "on-demand",
        placement.currency,
        lock_price=placement.lock_price,
    )
    if placement.dry_run:
        first = candidates[0]
        price = placement.spot_bid if placement.spot else first.listed_price(rent.currency)
        _print_dry_run(app, rent.preview(first.server_id, price), first.server, placement)
        return

    def confirm(candidate: Candidate) -> None:
        if not placement.yes:
            _confirm(app, candidate, placement)

    def lost(candidate: Candidate, skipped: Skipped, following: Candidate) -> None:
        app.out.info(
            f"server {candidate.server_id} was not rented ({skipped.reason}); "
            f"trying server {following.server_id} next"
        )
        placement.skipped.append({"server_id": skipped.server_id, "error": skipped.reason})

    try:
        placed = place_order(
            app.api(),
            candidates,
            rent,
            bid=placement.spot_bid,
            tries=placement.tries,
            before=confirm,
            on_lost=lost,
        )
    except Exception as exc:
        _stop_if_in_doubt(exc)
        failed = candidates[min(len(placement.skipped), len(candidates) - 1)]
        if failed.server is None and isinstance(exc, InvalidInputError):
            # A code 2 on a server never looked up (--yes): exit 4 if it is not listed.
            from clore.cli._marketdata import find_server, load

            find_server(load(app, rates=False), failed.server_id)
        raise
    _after_create(app, placed.order, placed.candidate.server, spec, placement)


def _confirm(app: AppContext, candidate: Candidate, placement: Placement) -> None:
    from clore.market import convert

    cur = placement.currency
    out = app.out
    server = candidate.server
    what = f"server {candidate.server_id}"
    if server is not None:
        what += f": {gpu_text(server)}, {server.specs.gpuram} GB each, {server.country or '?'}"
    if placement.spot_bid is not None:
        day: float | None = placement.spot_bid
        kind = "spot bid"
    else:
        day = candidate.listed_price(cur)
        kind = "on-demand"
    usd = None if day is None else convert(day, cur, USD, PriceContext(cur, placement.rates).rates)
    balance = next((w for w in app.api().wallets() if w.name == cur), None)
    out.info(f"Rent {what}")
    price_line = day_and_hour(day, cur) + (f" ≈ {usd:.2f} USD/day" if usd is not None else "")
    out.info(f"  price    {price_line} ({kind})")
    if balance is not None and balance.balance is not None:
        left = float(balance.balance)
        runway = ""
        if day:
            # The wallet pays the renter fee on top of the price.
            order_type = "spot" if placement.spot else "on-demand"
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


def _stop_if_in_doubt(exc: Exception) -> None:
    """The SDK could not tell whether the order exists: stop, and say how to find out.

    ``clore.rentals.place`` never tries another candidate then: the order may be running
    (and billing) already.
    """
    from clore import OrderUnconfirmedError

    if isinstance(exc, OrderUnconfirmedError):
        raise CliError(
            f"{exc}; not tried on another server: `clore orders` lists the order if it "
            f"was created (rent again only if it is not there)",
            EXIT_API,
        ) from exc


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


def lookup_server(app: AppContext, server_id: int, placement: Placement) -> Candidate:
    """The candidate for ``server_id``, with its listing when a prompt or --lock-price
    needs it (exit 4 when it is not listed then)."""
    from clore.rentals import Candidate

    needs_listing = placement.lock_price or not (placement.yes or placement.dry_run)
    if not needs_listing:
        return Candidate(server_id)
    from clore.cli._marketdata import find_server, load

    data = load(app, refresh=placement.lock_price)
    placement.rates = data.rates
    return Candidate(server_id, find_server(data, server_id))


def parse_bid(text: str | None, currency: str) -> float:
    """A bid per day in ``currency`` from ``0.0001``, ``0.0001btc`` or ``0.000004btc/h``."""
    from clore.market import parse_amount

    if text is None:
        raise CliError("a bid price is required", EXIT_USAGE)
    try:
        amount = parse_amount(text)
    except ValueError as exc:
        raise CliError(f"bid: {exc}", EXIT_USAGE) from None
    if amount.currency not in (None, currency):
        raise CliError(
            f"bid {text!r} is in {label(amount.currency or '')} but the order is paid in "
            f"{label(currency)}; use --currency {label(amount.currency or '').lower()}",
            EXIT_USAGE,
        )
    if amount.per_day <= 0:
        raise CliError("bid must be greater than zero", EXIT_USAGE)
    return amount.per_day
