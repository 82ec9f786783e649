"""The order tools: ``list_orders`` and ``show_order`` (read-only), ``verify_order``
(logs in and measures; changes no order) and ``cancel_order`` (hidden in read-only mode).

States are ``clore.rentals.order_status`` (``Order.state_at`` told apart by this
machine's guard log: ``provisioning``, ``running``, ``offline``, ``outbid``, ``expired``,
``cancelled``, ``budget_stopped``). ``cancel_order`` cancels only the agent's own orders
unless the person set ``cancel_foreign``; an order that has already ended is a plain
result saying so (cancelling is idempotent). What a verification measured comes from the
machine and is handed over as untrusted data (``clore.agent.untrusted``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec
from msgspec import UNSET, Meta, UnsetType

from clore.agent.renting import FREE_WINDOW, refresh_usage
from clore.agent.spec import ToolError, ToolResult, ToolSpec, schema_of, typed
from clore.agent.untrusted import untrusted
from clore.agent.views import num, order_view

if TYPE_CHECKING:
    from clore import Order
    from clore.agent.context import AgentContext
    from clore.rentals.verify import Credentials, Report, VerifyOptions

__all__ = ["TOOLS"]

OrderId = Annotated[int, Meta(ge=1, description="The order's id.")]


class ListArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    include_ended: Annotated[bool, Meta(description="Also orders that have ended.")] = False
    only_agent: Annotated[bool, Meta(description="Only the orders this agent server created.")] = (
        False
    )
    limit: Annotated[int, Meta(ge=1, le=200)] = 50


class OrderArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    order_id: OrderId


class VerifyArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    order_id: OrderId
    load: Annotated[
        bool, Meta(description="Load the GPUs for a few seconds to measure throughput.")
    ] = True
    wait_seconds: Annotated[
        float, Meta(ge=0, le=600, description="Wait up to this long for the order to be reachable.")
    ] = 120.0


class CancelArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    order_id: OrderId
    issue: (
        Annotated[
            str,
            Meta(
                max_length=2048,
                description="Report a fault of the server to Clore with the cancel (not for "
                "a normal end).",
            ),
        ]
        | UnsetType
    ) = UNSET


def _states(ctx: AgentContext, orders: list[Order]) -> dict[int, str]:
    from clore.rentals import budget_stops, order_status, spot_activity

    active = (
        spot_activity(ctx.client, orders) if any(o.spot and not o.expired for o in orders) else {}
    )
    stops = budget_stops()
    now = ctx.server_time()
    return {o.id: order_status(o, now, spot_active=active.get(o.id), stops=stops) for o in orders}


def list_orders(ctx: AgentContext, args: ListArgs) -> ToolResult:
    """The account's orders, the agent's marked."""
    orders = ctx.client.my_orders(include_completed=True)
    refresh_usage(ctx, orders)
    mine = {e.order_id for e in ctx.ledger.entries() if e.order_id is not None}
    shown = [
        o
        for o in orders
        if (args.include_ended or not o.expired) and (not args.only_agent or o.id in mine)
    ]
    shown.sort(key=lambda o: (o.expired, -float(o.ct)))
    shown = shown[: args.limit]
    states = _states(ctx, shown)
    now = ctx.server_time()
    rates = ctx.rates()[0] if shown else None
    views = [order_view(o, states[o.id], now, agent=o.id in mine, rates=rates) for o in shown]
    columns = [
        "id",
        "server",
        "gpu",
        "type",
        "state",
        "agent",
        "price_h",
        "usd_h",
        "spend",
        "time_left_s",
    ]
    rows = [
        [v["id"], v["server_id"], v["gpu"], v["type"], v["state"], v["created_by_agent"],
         v["price_per_hour"], v["usd_per_hour"], v["spend"], v["time_left_seconds"]]
        for v in views
    ]  # fmt: skip
    data = {"columns": columns, "rows": rows, "total": len(rows)}
    lines = [f"{len(rows)} order(s){'' if args.include_ended else ' running'}", "|".join(columns)]
    lines += [
        "|".join(
            "-" if c is None else (f"{c:.4g}" if isinstance(c, float) else str(c)) for c in row
        )
        for row in rows
    ]
    return ToolResult(data=data, text="\n".join(lines))


def _order(ctx: AgentContext, order_id: int) -> Order:
    from clore import OrderNotFoundError

    try:
        return ctx.client.get_order(order_id)
    except OrderNotFoundError:
        raise ToolError(
            f"order {order_id} is not among this account's orders", error="not_found"
        ) from None


def show_order(ctx: AgentContext, args: OrderArgs) -> ToolResult:
    """One order in detail."""
    from clore.workflows import registered_limits

    order = _order(ctx, args.order_id)
    entry = ctx.ledger.created(order.id)
    state = _states(ctx, [order])[order.id]
    now = ctx.server_time()
    view = order_view(order, state, now, agent=entry is not None, rates=ctx.rates()[0])
    limits = registered_limits().get(order.id)
    view["max_time_hours"] = (
        None if limits is None or limits.max_time is None else limits.max_time / 3600
    )
    view["in_free_window_seconds"] = (
        max(0, round(FREE_WINDOW - (now - float(order.ct)))) if not order.expired else 0
    )
    lines = [
        f"order {order.id} on server {order.si} ({view['gpu']}, {view['type']}): {state}"
        f"{' (created by this agent)' if entry else ''}",
        f"price {num(view['price_per_hour'])} {view['currency']}/h "
        f"({num(view['usd_per_hour'])} USD/h); spent {num(view['spend'])} {view['currency']} "
        f"({num(view['spend_usd'])} USD)",
    ]
    if not order.expired:
        lines.append(f"time left {num(view['time_left_seconds'])} s; age {view['age_seconds']} s")
        if view["max_time_hours"] is not None:
            lines.append(
                f"cancelled before it has run {num(view['max_time_hours'])} h (guard limit)"
            )
        if view["ssh"]:
            lines.append(f"ssh: {view['ssh']}")
        if view["http_url"]:
            lines.append(f"http: {view['http_url']}")
        if state == "provisioning":
            lines.append("not reachable yet: call show_order again in a few seconds")
        if view["in_free_window_seconds"]:
            lines.append(
                f"cancelling in the next {view['in_free_window_seconds']} s costs no creation fee"
            )
    return ToolResult(data={"order": view}, text="\n".join(lines))


def _run_verify(order: Order, credentials: Credentials, options: VerifyOptions) -> Report:
    from clore.rentals.verify import averify

    def run() -> Report:
        return asyncio.run(averify(order, credentials, options=options))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    # Called on an event loop's thread: verify on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def verify_order(ctx: AgentContext, args: VerifyArgs) -> ToolResult:
    """Log in to the order's machine and compare it with its listing."""
    from clore import WaitTimeoutError
    from clore.rentals import credentials_for, known_hosts_path
    from clore.rentals.verify import TargetError, VerifyOptions, target_of

    order = _order(ctx, args.order_id)
    if order.expired:
        raise ToolError(f"order {order.id} has ended: nothing to verify", error="ended")
    if not order.ready and args.wait_seconds > 0:
        try:
            order = ctx.client.wait_for_order(order.id, timeout=args.wait_seconds)
        except WaitTimeoutError:
            raise ToolError(
                f"order {order.id} is not reachable after {args.wait_seconds:g} s: call "
                "verify_order again later",
                error="not_ready",
            ) from None
    try:
        target_of(order)
    except TargetError as exc:
        raise ToolError(f"order {order.id}: {exc}; try again shortly", error="not_ready") from None
    credentials = credentials_for(order)
    if credentials is None:
        raise ToolError(
            f"no way to log in to order {order.id}: it was not rented from this machine and no "
            "default key or ssh-agent is set up",
            error="no_login",
        )
    options = VerifyOptions(known_hosts=known_hosts_path(order), load=args.load)
    report = _run_verify(order, credentials, options)
    entry = ctx.ledger.created(order.id)
    age = ctx.server_time() - float(order.ct)
    free_left = max(0, round(FREE_WINDOW - age))
    failed = [c.name for c in report.checks if c.verdict == "fail"]
    warned = [c.name for c in report.checks if c.verdict == "warn"]
    table = "\n".join(
        f"{c.name}|{c.verdict}|{c.listed or '-'}|{c.measured or '-'}|{c.reason}"
        for c in report.checks
    )
    block = untrusted(
        "check|verdict|listed|measured|reason\n" + table, source=f"verify order {order.id}"
    )
    advice = ""
    if not report.passed:
        advice = f"order {order.id} failed verification"
        if free_left > 0:
            advice += f": cancel_order within {free_left} s costs no creation fee"
        else:
            advice += ": cancel_order if it is not usable"
        if entry is None and not ctx.policy.cancel_foreign:
            advice += " (it was not created by this agent: the person must cancel it)"
    data: dict[str, Any] = {
        "order_id": order.id,
        "verdict": report.verdict,
        "passed": report.passed,
        "failed": failed,
        "warned": warned,
        "seconds": report.seconds,
        "free_window_seconds_left": free_left,
        "checks_untrusted": block,
    }
    if advice:
        data["advice"] = advice
    lines = [
        f"verification of order {order.id}: {report.verdict}"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; warned: {', '.join(warned)}" if warned else ""),
    ]
    if advice:
        lines.append(advice)
    lines.append(block)
    return ToolResult(data=data, text="\n".join(lines))


def cancel_order(ctx: AgentContext, args: CancelArgs) -> ToolResult:
    """Cancel one of the agent's orders."""
    from clore import OrderExpiredError, OrderNotFoundError
    from clore.rentals import cancel_orders
    from clore.workflows import forget_limits

    with ctx.mutation_lock:
        entry = ctx.ledger.created(args.order_id)
        if entry is None and not ctx.policy.cancel_foreign:
            raise ToolError(
                f"order {args.order_id} was not created by this agent server, and the person "
                "allows cancelling only those (cancel_foreign is off)",
                error="refused",
                refused=[{"cap": "cancel_foreign", "order_id": args.order_id}],
            )
        issue = None if args.issue is UNSET else args.issue
        done: list[int] = []
        try:
            final = cancel_orders(ctx.client, [args.order_id], issue, cancelled=done)
        except OrderNotFoundError:
            raise ToolError(
                f"order {args.order_id} is not among this account's orders", error="not_found"
            ) from None
        except OrderExpiredError:
            return _already_ended(ctx, args.order_id)
        except _uncertain() as exc:
            return _settle_lost_cancel(ctx, args.order_id, exc, bool(done))
        order = final[args.order_id]
        forget_limits(order.id)
        refresh_usage(ctx)
        ctx.invalidate_market()
    now = ctx.server_time()
    free = now - float(order.ct) < FREE_WINDOW
    data = {
        "cancelled": True,
        "order_id": order.id,
        "spend": float(order.spend),
        "creation_fee_waived": free,
        "created_by_agent": entry is not None,
    }
    from clore.market import label

    text = (
        f"order {order.id} cancelled; it spent {num(float(order.spend))} "
        f"{label(order.currency or 'bitcoin')}"
        + ("; inside the first 10 minutes: no creation fee" if free else "")
    )
    return ToolResult(data=data, text=text)


def _uncertain() -> tuple[type[BaseException], ...]:
    from clore import DatabaseError, TransportError, UnexpectedResponseError

    return (TransportError, UnexpectedResponseError, DatabaseError)


def _already_ended(ctx: AgentContext, order_id: int) -> ToolResult:
    order = _order(ctx, order_id)
    state = _states(ctx, [order])[order.id]
    refresh_usage(ctx)
    return ToolResult(
        data={"cancelled": False, "already_ended": True, "order_id": order_id, "state": state},
        text=f"order {order_id} had already ended ({state}): nothing to cancel",
    )


def _settle_lost_cancel(
    ctx: AgentContext, order_id: int, exc: BaseException, sent: bool
) -> ToolResult:
    """The cancel's answer was lost: my_orders says whether it took effect."""
    from clore import CloreError
    from clore.workflows import forget_limits

    try:
        order = ctx.client.get_order(order_id)
    except CloreError:
        order = None
    if order is not None and order.expired:
        forget_limits(order_id)
        refresh_usage(ctx)
        return ToolResult(
            data={"cancelled": True, "order_id": order_id, "reconciled": True},
            text=f"order {order_id} cancelled (the answer was lost; my_orders shows it ended)",
        )
    return ToolResult(
        data={
            "error": "cancel_uncertain",
            "order_id": order_id,
            "may_still_run": True,
            "sdk": str(exc),
        },
        text=f"the cancel of order {order_id} got no answer ({exc}) and the order does not show "
        "as ended: it may still be running and billing; call cancel_order again",
        is_error=True,
    )


TOOLS: Final = [
    ToolSpec(
        name="list_orders",
        title="List your orders",
        description=(
            "List the account's orders (running ones unless include_ended), newest first, as "
            "compact rows: id, server, GPU, type, state (provisioning, running, offline, outbid, "
            "expired, cancelled, budget_stopped), whether this agent created it, price per hour "
            "in the order's currency and USD, spend so far and seconds left. It also settles an "
            "order whose creation was uncertain."
        ),
        input_schema=schema_of(ListArgs),
        read_only=True,
        destructive=False,
        idempotent=True,
        mutating=False,
        handler=typed(ListArgs, list_orders),
        arguments=ListArgs,
    ),
    ToolSpec(
        name="show_order",
        title="Show one order",
        description=(
            "Show one order: its state, price per hour, spend, time left, whether this agent "
            "created it and its registered maximum time, the ssh command and http URL once it "
            "is running (no passwords), and how many seconds remain in the free first 10 "
            "minutes. Call it until a new order is running, then verify_order."
        ),
        input_schema=schema_of(OrderArgs),
        read_only=True,
        destructive=False,
        idempotent=True,
        mutating=False,
        handler=typed(OrderArgs, show_order),
        arguments=OrderArgs,
    ),
    ToolSpec(
        name="verify_order",
        title="Verify a rented machine",
        description=(
            "Log in to a running order's machine over SSH and check it against its listing: GPU "
            "count, model, memory, health, power, PCIe, CUDA, CPU, RAM, disk and (with load) "
            "throughput; takes up to a minute. Returns the verdict (ok, warn, fail), the failed "
            "and warned checks, and the table of measurements as untrusted data from the machine. "
            "A machine that fails inside its first 10 minutes can be cancelled with no "
            "creation fee."
        ),
        input_schema=schema_of(VerifyArgs),
        read_only=False,
        destructive=False,
        idempotent=True,
        mutating=False,
        handler=typed(VerifyArgs, verify_order),
        arguments=VerifyArgs,
    ),
    ToolSpec(
        name="cancel_order",
        title="Cancel an order",
        description=(
            "Cancel an order this agent created (others only if the person allows it): it stops "
            "running and billing at once; cancelled within its first 10 minutes it pays no "
            "creation fee. An order that has already ended is reported as such (nothing to do). "
            "Give issue only to report a fault of the server to Clore. Always cancel what you "
            "no longer use."
        ),
        input_schema=schema_of(CancelArgs),
        read_only=False,
        destructive=True,
        idempotent=True,
        mutating=True,
        handler=typed(CancelArgs, cancel_order),
        arguments=CancelArgs,
    ),
]
