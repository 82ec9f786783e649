"""The renting tools: ``quote_rental`` (price, fees, what the caps allow, a token) and
``rent_server`` (on demand or spot, with that token). Both hidden in read-only mode.
The rules are ``clore.agent.renting``'s."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final

from msgspec import UNSET, Meta, UnsetType

from clore.agent.arguments import RentArgs, argument_secrets, normalized
from clore.agent.caps import refuse
from clore.agent.renting import FREE_WINDOW, assess, describe, preview, rent
from clore.agent.spec import ToolError, ToolResult, ToolSpec, schema_of, typed
from clore.agent.views import money, num

if TYPE_CHECKING:
    from clore.agent.context import AgentContext
    from clore.agent.renting import Rented

__all__ = ["TOOLS", "RentServerArgs"]


class RentServerArgs(RentArgs, forbid_unknown_fields=True, kw_only=True):
    """``rent_server``: the quoted arguments and the quote's token."""

    token: (
        Annotated[
            str,
            Meta(
                max_length=100,
                description="The token quote_rental returned for exactly these arguments.",
            ),
        ]
        | UnsetType
    ) = UNSET


def _caps_lines(caps: dict[str, Any]) -> list[str]:
    lines = []
    for name, value in caps.items():
        if name == "max_spend_per_day_usd":
            lines.append(
                f"daily cap {num(value['limit'])} USD: {num(value['used'])} committed in 24 h, "
                f"{num(value['remaining'])} left (allows {num(value['allows_hours'])} h at "
                "this price)"
            )
        elif name == "max_spend_per_order_usd":
            lines.append(
                f"per-order cap {num(value['limit'])} USD: allows "
                f"{num(value['allows_hours'])} h at this price"
            )
        elif name == "max_price_per_hour_usd":
            lines.append(f"price cap {num(value['limit'])} USD/h")
        elif name == "max_live_orders":
            lines.append(f"live orders {value['live']} of at most {value['limit']}")
        elif name == "allowed_gpus":
            lines.append(f"allowed GPU models: {', '.join(value['allowed'])}")
    return lines


def _usd(value: float | None, per: str = "") -> str:
    return "" if value is None else f" ({num(value)} USD{per})"


def quote_rental(ctx: AgentContext, args: RentArgs) -> ToolResult:
    """Price a rental, check every cap, and issue a token for exactly these arguments."""
    arguments = normalized(args, ctx.policy)
    for secret in argument_secrets(arguments):
        ctx.add_secret(secret)
    with ctx.mutation_lock:
        assessment = assess(ctx, arguments, fresh=True)
        if assessment.refusals:
            raise refuse(assessment.refusals, assessment.caps)
        preview(ctx, arguments, assessment.price)
        details = describe(assessment)
        quote = ctx.quotes.issue("rent", arguments, assessment.price, details=details)
    cost = assessment.cost
    ttl = quote.expires_at - quote.issued_at
    data = {
        "token": quote.token,
        "expires_in_seconds": round(ttl),
        **details,
        "next": "call rent_server with exactly these arguments and the token",
    }
    server = details["server"]
    lines = [
        f"quote for server {server['id']} ({server['gpu']}), {arguments['order_type']}:",
        f"price {money(cost.price_per_hour, cost.currency, 'h')}"
        f"{_usd(cost.price_per_hour_usd, '/h')}, "
        f"{money(cost.price_per_day, cost.currency, 'day')}",
        f"fees: renter fee {cost.fee_percent:g} % of the price, creation fee "
        f"{money(cost.creation_fee, cost.currency)}{_usd(cost.usd(cost.creation_fee))} "
        f"(none if cancelled within {FREE_WINDOW / 60:.0f} minutes)",
        f"max time {num(cost.seconds / 3600)} h: at most {money(cost.max_cost, cost.currency)}"
        f"{_usd(cost.max_cost_usd)} with fees",
        *_caps_lines(assessment.caps),
    ]
    if assessment.spot:
        spot = assessment.spot
        lines.append(
            f"spot: minimum {num(spot['minimum_per_hour'])}/h, highest other bid "
            f"{num(spot['highest_bid_per_hour'])}/h; runs now: {spot['bid_runs_now']}"
        )
    lines.append(
        f"token {quote.token} (valid {ttl:.0f} s, one use): call rent_server with the same "
        "arguments"
    )
    return ToolResult(data=data, text="\n".join(lines))


def _rented(rented: Rented) -> ToolResult:
    order = rented.order
    assert order is not None
    cost = rented.assessment.cost
    hours = cost.seconds / 3600
    data: dict[str, Any] = {
        "rented": True,
        "order_id": order.id,
        "server_id": order.si,
        "order_type": "spot" if order.spot else "on-demand",
        "cost": cost.to_json(),
        "max_end_at": float(order.ct) + cost.seconds,
        "max_time": f"cancelled before it has run {num(hours)} h (registered guard limit; "
        "enforced while the agent server or `clore guard --all` runs)",
        "login": "an SSH password was generated and kept on this machine for verify_order "
        "and `clore ssh`; it is never shown",
        "notes": rented.notes,
        "next": "show_order until it is running, then verify_order; cancel_order when done "
        f"(within {FREE_WINDOW / 60:.0f} minutes: no creation fee)",
    }
    lines = [
        f"rented server {order.si} as order {order.id} ({data['order_type']}) at "
        f"{money(cost.price_per_hour, cost.currency, 'h')}; at most {num(hours)} h, "
        f"{money(cost.max_cost, cost.currency)} with fees",
        data["max_time"],
        data["login"],
        *rented.notes,
        "next: " + data["next"],
    ]
    return ToolResult(data=data, text="\n".join(lines))


def _uncertain(rented: Rented) -> ToolResult:
    server = rented.assessment.server.id
    spot = rented.assessment.cost.spot
    how = (
        "a spot bid is never sent twice"
        if spot
        else "after an answer was lost it looked for the order in my_orders and sent it again "
        "only when it was not there"
    )
    message = (
        f"the order on server {server} MAY EXIST: the SDK could not establish the outcome "
        f"({how}). {rented.uncertain}. It counts against the caps until settled; call "
        f"list_orders in a minute: an order on server {server} made now is the agent's (its "
        "maximum time is registered then). Do not rent again before that."
    )
    return ToolResult(
        data={
            "error": "order_uncertain",
            "may_exist": True,
            "server_id": server,
            "sdk": rented.uncertain,
            "message": message,
        },
        text=message,
        is_error=True,
    )


def rent_server(ctx: AgentContext, args: RentServerArgs) -> ToolResult:
    """Rent with a quote's token."""
    from clore.agent.quotes import QuoteRefused

    fields = {name: getattr(args, name) for name in RentArgs.__struct_fields__}
    arguments = normalized(RentArgs(**fields), ctx.policy)
    for secret in argument_secrets(arguments):
        ctx.add_secret(secret)
    token = None if args.token is UNSET else args.token
    with ctx.mutation_lock:
        try:
            quote = ctx.quotes.redeem(token, "rent", arguments)
        except QuoteRefused as exc:
            raise ToolError(exc.message, error="quote_refused", reason=exc.reason) from None
        rented = rent(ctx, arguments, quote)
    return _uncertain(rented) if rented.order is None else _rented(rented)


TOOLS: Final = [
    ToolSpec(
        name="quote_rental",
        title="Quote a rental",
        description=(
            "Price a rental before making it: the price per hour and per day in the payment "
            "currency and in USD, the renter fee and the creation fee (waived if cancelled within "
            "10 minutes), the most it can cost over its maximum time, and what the person's caps "
            "allow (price per hour, per order, per day with what is left, live orders, allowed "
            "GPU models). A refused cap says which and by how much. On success it returns a "
            "short-lived, single-use token bound to exactly these arguments and this price: "
            "rent_server needs it."
        ),
        input_schema=schema_of(RentArgs),
        read_only=True,
        destructive=False,
        idempotent=False,
        mutating=True,
        handler=typed(RentArgs, quote_rental),
        arguments=RentArgs,
    ),
    ToolSpec(
        name="rent_server",
        title="Rent a server",
        description=(
            "Rent the quoted server (on demand, or a spot bid): pass exactly the arguments given "
            "to quote_rental and its token. Refused when the token is missing, unknown, expired "
            "or used, when the arguments differ, when the price moved beyond the tolerance, when "
            "a cap no longer allows it, or when the person declines. The order gets a maximum "
            "running time after which it is cancelled, and a login kept on this machine. If the "
            "outcome is uncertain the result says the order may exist: check list_orders, do not "
            "rent again. It costs money: cancel_order when done."
        ),
        input_schema=schema_of(RentServerArgs),
        read_only=False,
        destructive=False,
        idempotent=False,
        mutating=True,
        handler=typed(RentServerArgs, rent_server),
        arguments=RentServerArgs,
    ),
]
