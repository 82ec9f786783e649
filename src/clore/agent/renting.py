"""Quoting and renting under the person's caps, for the rent tools and (later) the job
tools: ``assess``, ``rent`` (the arguments are ``clore.agent.arguments``', the cost and
the caps ``clore.agent.caps``').

**Renting** (``rent``): the token is redeemed (``clore.agent.quotes``), the listing read
again and the price compared with the quoted one (``price_tolerance``), every cap checked
again, the person asked (``confirm``) where the client can; then the intent is written
to the ledger, and the order created through ``clore.workflows.RentSpec`` with the SDK's
exactly-once ``create_order`` (an on-demand price is sent as ``required_price``). The new
order gets its maximum time registered as guard limits
(``clore.workflows.register_limits``, as ``clore rent --max-time`` does), its login (a
password generated here, never shown) remembered with ``clore.rentals.RentalLogins`` so
``verify_order`` and ``clore ssh`` can log in, and the person's default public key, when
there is one, sent too so they can log in themselves.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from clore.agent.caps import Cost, check_caps, refuse, usd_rate
from clore.agent.ledger import AgentOrder, Usage, new_intent
from clore.agent.spec import ToolError
from clore.agent.views import gpu_text, money, num, sig

if TYPE_CHECKING:
    from clore import Order, Server
    from clore.agent.context import AgentContext, Market
    from clore.agent.quotes import Quote
    from clore.workflows import RentSpec

__all__ = [
    "FREE_WINDOW",
    "Assessment",
    "Rented",
    "assess",
    "confirmation_message",
    "describe",
    "preview",
    "refresh_usage",
    "rent",
]

#: Seconds after its creation during which an order is cancelled without a creation fee.
FREE_WINDOW: Final = 600.0


# --------------------------------------------------------------------------- usage


def refresh_usage(
    ctx: AgentContext, orders: list[Order] | None = None
) -> tuple[Usage, list[Order]]:
    """The ledger settled with ``my_orders(include_completed=True)`` (fetched unless
    given), orders it adopts registered, and what it counts now."""
    from clore.workflows import Limits, register_limits

    listed = orders if orders is not None else ctx.client.my_orders(include_completed=True)
    adopted = ctx.ledger.settle(listed, ctx.clock())
    for entry in adopted:
        if entry.order_id is None:
            continue
        register_limits(entry.order_id, Limits(max_time=entry.max_seconds))
        password = ctx.pending_logins.pop(entry.rental.id, None)
        order = next((o for o in listed if o.id == entry.order_id), None)
        if password and order is not None:
            _remember_login(order, password, None)
    return ctx.ledger.usage(ctx.clock()), listed


# --------------------------------------------------------------------------- assess


@dataclass(frozen=True)
class Assessment:
    """A rental looked at: the server, the price, the cost, the caps."""

    arguments: dict[str, Any]
    server: Server
    price: float
    cost: Cost
    usage: Usage
    refusals: list[dict[str, Any]]
    caps: dict[str, Any]
    market: Market
    spot: dict[str, Any] | None = None


def _bid(text: str, currency: str, rates: dict[str, float] | None) -> float:
    from clore.market import convert, label, parse_amount

    try:
        amount = parse_amount(text)
    except ValueError as exc:
        raise ToolError(f"bid: {exc}", error="bad_arguments") from None
    value = amount.per_day
    source = amount.in_currency(currency)
    converted = convert(value, source, currency, rates)
    if converted is None:
        raise ToolError(
            f"bid: cannot convert {label(source)} to {label(currency)} without USD rates; "
            f"give the bid in {label(currency)}",
            error="bad_arguments",
        )
    if converted <= 0:
        raise ToolError("bid must be more than zero", error="bad_arguments")
    from clore.workflows.plan import round_price

    return round_price(converted, up=True)


def assess(
    ctx: AgentContext, arguments: dict[str, Any], *, fresh: bool, price: float | None = None
) -> Assessment:
    """Look at renting per ``arguments`` (``normalized``) now: the listing (``fresh``:
    fetched again), the price (the on-demand price, or the bid: ``price`` when given),
    the cost and every cap. Raises ``ToolError`` when the server cannot be rented."""
    from clore import ServerNotFoundError
    from clore.market import label
    from clore.workflows.plan import planned_seconds

    market = ctx.market(max_age=0 if fresh else None)
    server_id = int(arguments["server_id"])
    currency = str(arguments["currency"])
    spot = arguments["order_type"] == "spot"
    server = market.server(server_id)
    if server is None:
        raise ToolError(
            f"server {server_id} is not on the marketplace (rented, offline or unknown): "
            "search_market again",
            error="not_found",
            server_id=server_id,
        )
    if server.rented and not spot:
        raise ToolError(
            f"server {server_id} is rented on demand by someone: choose another",
            error="unavailable",
        )
    if not server.accepts(currency):
        takes = ", ".join(label(c) for c in server.allowed_coins)
        raise ToolError(
            f"server {server_id} does not take {label(currency)}; it takes {takes}",
            error="currency_not_allowed",
        )
    rates = market.rates
    spot_info: dict[str, Any] | None = None
    if spot:
        minimum = server.price_per_day(currency, spot=True)
        if minimum is None:
            raise ToolError(
                f"server {server_id} lists no spot price in {label(currency)}", error="unavailable"
            )
        try:
            book = ctx.client.spot_marketplace(server_id)
        except ServerNotFoundError:
            raise ToolError(
                f"server {server_id} is gone from the marketplace", error="not_found"
            ) from None
        fresh_rates = {k: float(v) for k, v in book.currency_rates_in_usd.items() if v}
        if fresh_rates:
            ctx.set_rates(fresh_rates)
            rates = fresh_rates
        if price is not None:
            day = price
        elif arguments["bid"] is not None:
            day = _bid(str(arguments["bid"]), currency, rates)
        else:
            day = max(minimum, float(book.server.min_pricing.get(currency) or minimum))
        if day < minimum:
            raise ToolError(
                f"bid {money(day / 24, currency, 'h')} is under the server's spot minimum of "
                f"{money(minimum / 24, currency, 'h')}",
                error="bid_too_low",
            )
        highest = max((float(o.bid) for o in book.offers if o.active and not o.my), default=None)
        spot_info = {
            "minimum_per_hour": sig(minimum / 24),
            "highest_bid_per_hour": sig(None if highest is None else highest / 24),
            "bid_runs_now": highest is None or day > highest,
            "note": "a spot bid runs only while it is the highest, and pays only while it runs",
        }
    else:
        listed = server.price_per_day(currency)
        if listed is None:
            raise ToolError(
                f"server {server_id} lists no price in {label(currency)}", error="unavailable"
            )
        day = listed
    fees = ctx.renter_fees()
    kind = "spot" if spot else "on-demand"
    seconds = planned_seconds(server, max_time=float(arguments["max_seconds"]))
    cost = Cost(
        currency=currency,
        spot=spot,
        price_per_day=day,
        usd_rate=usd_rate(currency, rates),
        fee_percent=fees.fee_percent(kind, currency),
        creation_fee=fees.creation_fee(kind, currency),
        seconds=float(seconds if seconds is not None else arguments["max_seconds"]),
    )
    usage, _ = refresh_usage(ctx)
    refusals, caps = check_caps(ctx.policy, server, cost, usage)
    return Assessment(arguments, server, day, cost, usage, refusals, caps, market, spot_info)


def preview(ctx: AgentContext, arguments: dict[str, Any], price: float) -> None:
    """Check the order's settings as ``create_order`` would (nothing sent); ToolError."""
    from clore import ParameterError

    try:
        _spec(arguments, password="Preview0", token=arguments["jupyter_token"]).preview(
            int(arguments["server_id"]), price
        )
    except ParameterError as exc:
        raise ToolError(f"bad order settings: {exc}", error="bad_arguments") from None


def _spec(
    arguments: dict[str, Any], *, password: str, token: str | None, key: str | None = None
) -> RentSpec:
    from clore.workflows import RentSpec

    return RentSpec(
        image=str(arguments["image"]),
        order_type=arguments["order_type"],
        currency=str(arguments["currency"]),
        ports=arguments["ports"],
        env=arguments["env"],
        ssh_password=password,
        # The API takes one key: the one given, else the person's default one.
        ssh_key=arguments["ssh_key"] or key,
        jupyter_token=token,
        command=arguments["command"],
        lock_price=True,
    )


def describe(assessment: Assessment) -> dict[str, Any]:
    """The figures a quote (and the confirmation) shows."""
    server = assessment.server
    return {
        "server": {
            "id": server.id,
            "gpu": gpu_text(server),
            "gpuram_gb": sig(float(server.specs.gpuram)),
            "country": server.country or None,
            "reliability": sig(float(server.reliability), 3),
        },
        "order_type": assessment.arguments["order_type"],
        "cost": assessment.cost.to_json(),
        "caps": assessment.caps,
        "spot": assessment.spot,
        "free_cancel_minutes": FREE_WINDOW / 60,
    }


# --------------------------------------------------------------------------- rent


@dataclass
class Rented:
    """What a rent did: the order (None when it may exist but is unknown), the
    assessment it passed, the uncertain error, the ledger entry."""

    order: Order | None
    assessment: Assessment
    entry: AgentOrder
    uncertain: str | None = None
    notes: list[str] = field(default_factory=list)


def _remember_login(order: Order, password: str, key_path: Any) -> str | None:
    from clore.rentals import LoginsFileError, RentalLogins

    try:
        RentalLogins().remember(order, password=password, public_key=key_path)
    except (OSError, LoginsFileError) as exc:
        return f"could not remember the login of order {order.id}: {exc}"
    return None


def rent(
    ctx: AgentContext, arguments: dict[str, Any], quote: Quote, *, kind: str = "rent"
) -> Rented:
    """Rent per ``arguments`` once ``quote`` was redeemed for them (see the module
    docstring). Hold ``ctx.mutation_lock``. ``ToolError`` for a refusal or a decline;
    the SDK's errors as they come, except an order that may exist (``Rented.uncertain``)."""
    from clore import CloreError, OrderUnconfirmedError
    from clore.agent.quotes import price_moved
    from clore.rentals import default_public_key
    from clore.workflows import Limits, register_limits

    spot = arguments["order_type"] == "spot"
    # A spot bid is what was quoted; an on-demand price is the listing's now.
    assessment = assess(ctx, arguments, fresh=True, price=quote.price if spot else None)
    if not spot and price_moved(quote.price, assessment.price, ctx.policy.price_tolerance):
        change = (assessment.price - quote.price) / quote.price * 100 if quote.price else 0.0
        raise ToolError(
            f"the price moved {change:+.1f} % since the quote (tolerance "
            f"{ctx.policy.price_tolerance * 100:g} %): now "
            f"{money(assessment.price / 24, assessment.cost.currency, 'h')}, quoted "
            f"{money(quote.price / 24, assessment.cost.currency, 'h')}; call quote_rental again",
            error="refused",
            refused=[
                {
                    "cap": "price_moved",
                    "quoted_per_hour": sig(quote.price / 24),
                    "current_per_hour": sig(assessment.price / 24),
                    "tolerance": ctx.policy.price_tolerance,
                }
            ],
        )
    if assessment.refusals:
        raise refuse(assessment.refusals, assessment.caps)
    preview(ctx, arguments, assessment.price)
    details = describe(assessment)
    if ctx.confirm is not None:
        answer = ctx.confirm(confirmation_message(assessment), details)
        if answer is False:
            ctx.quotes.decline(quote.token)
            raise ToolError(
                "the person declined this rental: nothing was rented and the quote is void; "
                "do not retry it without asking them",
                error="declined",
            )
    password = secrets.token_hex(12)
    ctx.add_secret(password)
    token = arguments["jupyter_token"]
    if token is None and "http" in (arguments["ports"] or {}).values():
        token = secrets.token_hex(12)
    ctx.add_secret(token)
    notes: list[str] = []
    key_path = None
    default_key = None
    if arguments["ssh_key"] is None:
        try:
            found = default_public_key()
        except ValueError:
            found = None
        if found is not None:
            default_key, key_path = found.text, found.path
    spec = _spec(arguments, password=password, token=token, key=default_key)
    cost = assessment.cost
    entry = AgentOrder(
        endpoint=ctx.ledger.endpoint,
        rental=new_intent(
            server_id=assessment.server.id,
            price=assessment.price,
            currency=cost.currency,
            cost=cost.max_cost,
            seconds=cost.seconds,
            intent_at=ctx.clock(),
            intent_server_at=ctx.server_time(),
            owner=ctx.owner,
        ),
        spot=spot,
        max_seconds=cost.seconds,
        fee_percent=cost.fee_percent,
        creation_fee=cost.creation_fee,
        max_cost=cost.max_cost,
        usd_rate=cost.usd_rate,
        max_cost_usd=cost.max_cost_usd,
        kind=kind,
    )
    ctx.ledger.record(entry)
    try:
        order = spec.create(ctx.client, assessment.server.id, assessment.price)
    except OrderUnconfirmedError as exc:
        entry.rental.status = "unconfirmed"
        entry.rental.note = "create_order: the order may exist"
        ctx.ledger.update(entry)
        ctx.pending_logins[entry.rental.id] = password
        ctx.invalidate_market()
        return Rented(None, assessment, entry, uncertain=str(exc))
    except CloreError:
        # The SDK raises a plain error only when no attempt may have rented.
        entry.rental.status = "void"
        entry.rental.note = "create_order refused"
        ctx.ledger.update(entry)
        raise
    except BaseException:
        # Interrupted mid-call: the order may exist; my_orders settles it later.
        entry.rental.status = "unconfirmed"
        entry.rental.note = "create_order interrupted"
        ctx.ledger.update(entry)
        ctx.pending_logins[entry.rental.id] = password
        raise
    entry.rental.status = "rented"
    entry.rental.order_id = order.id
    entry.ct = float(order.ct)
    ctx.ledger.update(entry)
    ctx.invalidate_market()
    register_limits(order.id, Limits(max_time=cost.seconds))
    problem = _remember_login(order, password, key_path)
    if problem:
        notes.append(problem)
    if key_path is not None:
        notes.append("the person's default public key was sent (they can log in with it)")
    return Rented(order, assessment, entry, notes=notes)


def confirmation_message(assessment: Assessment) -> str:
    """What the person is asked before an order is created."""
    cost = assessment.cost
    server = assessment.server
    kind = "spot bid" if cost.spot else "on-demand"
    usd = "" if cost.price_per_hour_usd is None else f" (~{num(cost.price_per_hour_usd)} USD/h)"
    total = "" if cost.max_cost_usd is None else f" (~{num(cost.max_cost_usd)} USD)"
    caps = []
    for name, value in assessment.caps.items():
        if name == "max_spend_per_day_usd":
            caps.append(f"daily cap {num(value['limit'])} USD, {num(value['remaining'])} left")
        elif name == "max_spend_per_order_usd":
            caps.append(f"per-order cap {num(value['limit'])} USD")
        elif name == "max_price_per_hour_usd":
            caps.append(f"price cap {num(value['limit'])} USD/h")
        elif name == "max_live_orders":
            caps.append(f"live orders {value['live']} of {value['limit']}")
    return (
        f"Rent server {server.id} ({gpu_text(server)}, {server.country or '?'}) {kind} at "
        f"{money(cost.price_per_hour, cost.currency, 'h')}{usd} for at most "
        f"{num(cost.seconds / 3600)} h: up to {money(cost.max_cost, cost.currency)}{total} "
        f"with fees." + (f" Caps: {'; '.join(caps)}." if caps else "")
    )
