"""How the order-creating commands (``rent``, ``spot bid``) place an order, around
``clore.rentals.place``: the confirmation (server, price per day and hour, balance and
runway, the SSH key sent), ``--dry-run`` (``RentSpec.preview``: exactly the body
create_order would send, secrets redacted), the report of a lost race, the stop when the
order may exist, the limits registered, the login remembered (``rentals.RentalLogins``),
``--wait`` until SSH is ready, and what to do next. The confirmation says when one of
your live orders is on the server already. ``rent --verify`` goes through
``_verifying`` (``rentals.place_verified``) instead.

Once an order exists, whatever stops the command before the user has it (Ctrl-C, a wait
that times out, any error) ends in one line saying the order is still running and
billing, with the commands to cancel it or wait again (``_billing``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from clore.cli import _limits
from clore.cli._context import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    AppContext,
    CliError,
)
from clore.cli._format import day_and_hour, gpu_text, order_doc, price_text, server_doc
from clore.cli._orderopts import OrderSpec, redact
from clore.market import USD, PriceContext, label

if TYPE_CHECKING:
    from clore import CreateOrderRequest, Order, Server
    from clore.rentals import Candidate, Skipped
    from clore.workflows import Limits

__all__ = [
    "Hooks",
    "Placement",
    "created",
    "lookup_server",
    "parse_bid",
    "place",
    "report_access",
    "wait_ready",
]


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
    verify: bool = False
    verify_tries: int = 1
    # The server whose create_order is running (a Ctrl-C then may leave an order).
    creating: int | None = None
    # What a wait for the new order waits on ("provisioning", a spot bid not winning).
    why: str = "provisioning"

    @property
    def spot(self) -> bool:
        return self.spot_bid is not None


def place(
    app: AppContext, candidates: list[Candidate], spec: OrderSpec, placement: Placement
) -> None:
    """Create one order on the first candidate that accepts it, then report (and wait)."""
    from clore.rentals import place as place_order

    spec.require_login()
    candidates = _without_bad_hosts(app, candidates)
    rent = spec.rent_spec(
        "spot" if placement.spot else "on-demand",
        placement.currency,
        lock_price=placement.lock_price,
    )
    if placement.dry_run:
        first = candidates[0]
        price = placement.spot_bid if placement.spot else first.listed_price(rent.currency)
        body = rent.preview(first.server_id, price)
        _print_dry_run(app, body, first.server, spec, placement)
        return

    def confirm(candidate: Candidate) -> None:
        if not placement.yes:
            _confirm(app, candidate, spec, placement)
        placement.creating = candidate.server_id

    def lost(candidate: Candidate, skipped: Skipped, following: Candidate) -> None:
        app.out.info(
            f"server {candidate.server_id} was not rented ({skipped.reason}); "
            f"trying server {following.server_id} next"
        )
        placement.skipped.append({"server_id": skipped.server_id, "error": skipped.reason})

    if placement.verify:
        from clore.cli._verifying import place_and_verify

        hooks = Hooks(confirm, lost)
        with _creating(app, candidates, placement):
            place_and_verify(app, candidates, rent, spec, placement, hooks)
        return
    with _creating(app, candidates, placement):
        placed = place_order(
            app.api(),
            candidates,
            rent,
            bid=placement.spot_bid,
            tries=placement.tries,
            before=confirm,
            on_lost=lost,
        )
    created(app, placed.order, placed.candidate.server, spec, placement)
    try:
        order = wait_ready(app, placed.order, placement)
    except BaseException as exc:
        from clore.cli._billing import billing_error

        raise billing_error(exc, placed.order.id) from exc
    report_access(app, order, spec, placement)


def _without_bad_hosts(app: AppContext, candidates: list[Candidate]) -> list[Candidate]:
    """The candidates not on the bad-host list (``clore hosts bad``), saying which were
    passed over; a server named by id is kept, with a warning."""
    from clore.rentals import avoid_bad_hosts
    from clore.rentals.verify import BadHostsFileError, list_bad_hosts

    try:
        bad = list_bad_hosts()
    except BadHostsFileError as exc:
        app.out.warn(f"{exc}; not skipping bad hosts")
        return candidates
    kept, passed = avoid_bad_hosts(candidates, bad)
    if not passed:
        return candidates
    if len(candidates) == 1:
        app.out.warn(
            f"server {passed[0].server_id} is on your bad-host list ({passed[0].reason}); "
            "renting it as asked"
        )
        return candidates
    named = ", ".join(str(p.server_id) for p in passed[:5])
    more = f" and {len(passed) - 5} more" if len(passed) > 5 else ""
    app.out.info(f"skipping server(s) {named}{more}: on the bad-host list (`clore hosts bad`)")
    if not kept:
        raise CliError(
            "every matching server is on the bad-host list (`clore hosts bad` lists them, "
            "`clore hosts bad --forget ID` forgets one)",
            EXIT_NOT_FOUND,
        )
    return kept


@dataclass(frozen=True)
class Hooks:
    """What ``place`` gives the verifying placement: the confirmation, the lost race."""

    confirm: Callable[[Candidate], None]
    lost: Callable[[Candidate, Skipped, Candidate], None]


@contextmanager
def _creating(app: AppContext, candidates: list[Candidate], placement: Placement) -> Iterator[None]:
    """Around creating the order: an order that may exist stops with how to find out
    (also when interrupted mid-create), a code 2 on a server never looked up is exit 4
    when the server is not listed."""
    from clore import InvalidInputError

    try:
        yield
    except KeyboardInterrupt as exc:
        if placement.creating is not None:
            raise CliError(
                f"interrupted while creating the order on server {placement.creating}: it may "
                "exist and be billing; `clore orders` lists it (`clore cancel ID` stops it)",
                EXIT_INTERRUPTED,
            ) from exc
        raise
    except Exception as exc:
        _stop_if_in_doubt(exc)
        failed = candidates[min(len(placement.skipped), len(candidates) - 1)]
        if failed.server is None and isinstance(exc, InvalidInputError):
            # A code 2 on a server never looked up (--yes): exit 4 if it is not listed.
            from clore.cli._marketdata import find_server, load

            find_server(load(app, rates=False), failed.server_id)
        raise


def _confirm(app: AppContext, candidate: Candidate, spec: OrderSpec, placement: Placement) -> None:
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
    login = spec.key_note()
    if login is not None:
        out.info(f"  login    {login}")
    mine = _yours_on(app, candidate.server_id)
    if mine:
        out.warn(f"you already rent server {candidate.server_id}: {mine}")
    if placement.verify:
        out.info(
            "  verify   after it is ready, inside the free 10 minutes; a machine that fails "
            "is cancelled at no creation fee"
        )
    try:
        confirmed = click.confirm("Proceed?", default=False, err=True)
    except click.Abort:
        click.echo(err=True)
        confirmed = False
    if not confirmed:
        raise CliError("not confirmed; nothing was rented (--yes skips the question)", 1)


def _yours_on(app: AppContext, server_id: int) -> str:
    """Your live orders on ``server_id`` (``order 123 (on-demand)``), ``""`` for none: said
    before the question, as a second order there is rarely meant."""
    from clore import CloreError

    try:
        live = [o for o in app.api().my_orders() if o.si == server_id and not o.expired]
    except CloreError:
        return ""  # the confirmation goes on without it
    kinds = [f"order {o.id} ({'spot bid' if o.spot else 'on-demand'})" for o in live]
    return ", ".join(kinds)


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
    app: AppContext,
    body: CreateOrderRequest,
    server: Server | None,
    spec: OrderSpec,
    placement: Placement,
) -> None:
    import msgspec

    shown = redact(msgspec.to_builtins(body))
    ctx = PriceContext(placement.currency, placement.rates)
    key_file = None if spec.ssh_key_path is None else str(spec.ssh_key_path)
    document = {
        "dry_run": True,
        "method": "POST",
        "endpoint": "create_order",
        "body": shown,
        "server": None if server is None else server_doc(server, ctx),
        "ssh_key_file": key_file,
        "ssh_key_default": spec.key_default,
        "verify": placement.verify,
    }

    def human() -> None:
        app.out.echo("Dry run: nothing was sent. The request would be:")
        app.out.echo("POST /v1/create_order")
        app.out.echo(msgspec.json.format(msgspec.json.encode(shown), indent=2).decode())
        login = spec.key_note()
        if login is not None:
            app.out.echo(f"login: {login}")
        if placement.verify:
            app.out.echo(f"then: verify the machine (up to {placement.verify_tries} orders)")

    app.out.result(document, human)


def created(
    app: AppContext, order: Order, server: Server | None, spec: OrderSpec, placement: Placement
) -> None:
    """Right after the order exists: say so, register its limits and remember how to log
    in to it (before any wait, so an interrupted command leaves both behind)."""
    from clore.cli._marketdata import invalidate

    placement.creating = None
    invalidate(app)
    out = app.out
    limits = placement.limits
    gpu = f" ({gpu_text(server)})" if server is not None else ""
    price = day_and_hour(float(order.price), order.currency or placement.currency)
    if order.spot:
        out.info(f"Placed a spot bid on server {order.si}{gpu} as order {order.id}: {price}")
    else:
        out.info(f"Rented server {order.si}{gpu} as order {order.id}: {price}, on-demand")
    _remember_login(app, order, spec)
    if limits:
        # Before --wait, so an interrupted wait leaves them registered for `clore guard`.
        _limits.record(app, order, limits, foreground=placement.guard)
    placement.why = "provisioning"
    if order.spot and not _bid_runs(app, order):
        placement.why = "a spot bid runs only while it is the highest"


def _remember_login(app: AppContext, order: Order, spec: OrderSpec) -> None:
    """Keep the key file, password and Jupyter token the order was created with (``clore
    verify``, ``ssh``, ``ssh-config`` and ``open`` log in with them later); a file that
    cannot be written is a warning, not a failure: the order exists."""
    from clore.rentals import LoginsFileError, RentalLogins

    token = spec.jupyter_token if spec.serves_jupyter else None
    if spec.ssh_key_path is None and not spec.ssh_password and not token:
        return
    try:
        RentalLogins().remember(
            order, public_key=spec.ssh_key_path, password=spec.ssh_password, jupyter_token=token
        )
    except (OSError, LoginsFileError) as exc:
        app.out.warn(f"could not remember how to log in to order {order.id}: {exc}")


def wait_ready(app: AppContext, order: Order, placement: Placement) -> Order:
    """With ``--wait`` (or ``--verify``), block until SSH answers; the order as it is."""
    if not (placement.wait or placement.verify):
        return order
    started = time.monotonic()
    with app.out.waiting(f"waiting for order {order.id} to be ready ({placement.why})"):
        order = app.api().wait_for_order(order.id, timeout=placement.timeout)
    app.out.info(f"Order {order.id} is ready after {time.monotonic() - started:.1f} s")
    return order


def report_access(
    app: AppContext,
    order: Order,
    spec: OrderSpec,
    placement: Placement,
    extra: dict[str, Any] | None = None,
) -> None:
    """Print the rented order and how to reach it (the command's result document, with
    ``extra`` keys), then run ``--guard``."""
    import msgspec

    from clore.cli._states import state_word

    out = app.out
    limits = placement.limits
    now = app.server_time()
    jupyter = spec.jupyter_url(order.http_url)
    record = order_doc(order, now)
    record["derived"]["state"] = state_word(order, now)
    document = {
        "order": record,
        "jupyter_url": jupyter,
        "jupyter_token": spec.jupyter_token if spec.serves_jupyter else None,
        "skipped": placement.skipped,
        "limits": None if not limits else msgspec.to_builtins(limits),
        **(extra or {}),
    }

    def human() -> None:
        if order.ready:
            out.echo(f"ssh:      {_ssh_line(order, spec)}")
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


def _ssh_line(order: Order, spec: OrderSpec) -> str:
    """The order's ssh command, with ``-i KEY`` when the key sent is one ssh would not try
    by itself (not ``~/.ssh/id_*``: ``--ssh-key`` elsewhere, ``$CLORE_SSH_KEY``)."""
    import shlex
    from pathlib import Path

    from clore.rentals import DEFAULT_KEY_NAMES, private_key_beside

    command = order.ssh_command() or ""
    private = None if spec.ssh_key_path is None else private_key_beside(spec.ssh_key_path)
    ssh_dir = Path.home() / ".ssh"
    tried = {ssh_dir / name.removesuffix(".pub") for name in DEFAULT_KEY_NAMES}
    if private is None or private.absolute() in tried or not command.startswith("ssh "):
        return command
    return f"ssh -i {shlex.quote(str(private))} {command.removeprefix('ssh ')}"


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
