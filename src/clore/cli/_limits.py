"""Budget guards of the commands that create an order (``rent``, ``spot bid``).

``--max-spend``/``--max-time`` are registered for the new order, so ``clore guard --all``
enforces them; ``--guard`` enforces them in the foreground until the order ends. Nothing
enforces them while no guard runs, and the commands say so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import click

from clore.cli._automation import check_limits, parse_limits, run_events
from clore.cli._context import AppContext, CliError
from clore.cli._format import amount, duration
from clore.market import label

if TYPE_CHECKING:
    from clore import Order
    from clore.workflows import Limits

__all__ = [
    "GUARD_INTERVAL",
    "check",
    "describe",
    "enforcement",
    "enforcement_text",
    "guard",
    "guard_options",
    "read",
    "record",
]

#: Seconds between the checks of ``--guard`` (limits are enforced one check ahead).
GUARD_INTERVAL: Final = 60.0


def guard_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--max-spend``/``--max-time`` (registered for ``clore guard``) and ``--guard``."""
    fn = click.option(
        "--guard",
        "run_guard",
        is_flag=True,
        help="Stay in the foreground enforcing --max-spend/--max-time until the order ends.",
    )(fn)
    fn = click.option(
        "--max-time",
        metavar="DURATION",
        help="Cancel the order before it has run this long (8h, 1d); enforced while "
        "`clore guard --all` (or --guard) runs.",
    )(fn)
    return click.option(
        "--max-spend",
        metavar="AMOUNT",
        help="Cancel the order before its spend passes AMOUNT (0.001btc, 5usd); enforced "
        "while `clore guard --all` (or --guard) runs.",
    )(fn)


def check(options: dict[str, Any]) -> None:
    """Malformed limits, and ``--guard`` without one, exit 2 before anything is sent."""
    if options["run_guard"] and options["max_spend"] is None and options["max_time"] is None:
        raise CliError("--guard needs --max-spend or --max-time", 2)
    check_limits(options["max_spend"], options["max_time"])


def read(
    app: AppContext, options: dict[str, Any], currency: str, rates: dict[str, float] | None
) -> tuple[Limits | None, dict[str, float] | None]:
    """The limits in the order's ``currency`` (None without any) and the USD rates, which are
    fetched when a spend in another currency needs them; exit 2 when malformed."""
    spend = options["max_spend"]
    named = check_limits(spend, options["max_time"])
    if rates is None and named not in (None, currency):
        from clore.cli._marketdata import load

        rates = load(app).rates
    limits = parse_limits(spend, options["max_time"], currency, rates=rates)
    return (limits if limits else None), rates


def describe(limits: Limits, currency: str | None, *, note: bool = True) -> str:
    """``spend up to 0.00010000 BTC, running time up to 8 h 00 m (…)``; a spend without
    ``currency`` is in the order's own."""
    parts = []
    if limits.max_spend is not None:
        unit = label(currency) if currency else "(the order's currency)"
        shown = amount(limits.max_spend, currency) if currency else f"{limits.max_spend:g}"
        parts.append(f"spend up to {shown} {unit}")
    if limits.max_time is not None:
        parts.append(f"running time up to {duration(limits.max_time)}")
    tail = " (cancelled one check before a limit is crossed)" if note else ""
    return ", ".join(parts) + tail


def enforcement(app: AppContext, order_id: int, registered: Limits | None) -> list[dict[str, Any]]:
    """The guards enforcing limits on ``order_id`` right now (their leases), as documents."""
    import msgspec

    from clore.workflows.guard import enforcing

    now = app.clock.time()
    found = []
    for lease, applied in enforcing(order_id, now, registered):
        last = lease.last_round_at if lease.last_round_at is not None else now
        found.append(
            {
                "pid": lease.pid,
                "source": lease.source,
                "interval": lease.interval,
                "last_round_at": lease.last_round_at,
                "seconds_since_round": max(0.0, now - last),
                "limits": msgspec.to_builtins(applied),
                "own_limits": lease.limits is not None,
            }
        )
    return found


def enforcement_text(guards: list[dict[str, Any]], currency: str | None) -> str:
    """``enforcing now: clore guard (pid 4242, last check 20 s ago)``, or that none is."""
    if not guards:
        return "none running: nothing enforces the limits now (`clore guard --all` does)"
    parts = []
    for found in guards:
        who = "clore guard" if found["source"] == "guard" else f"clore {found['source']} keep"
        ago = duration(found["seconds_since_round"])
        text = f"{who} (pid {found['pid']}, last check {ago} ago)"
        if found["own_limits"]:
            from clore.workflows import Limits

            own = Limits(**found["limits"])
            text += f" with its own limits: {describe(own, currency, note=False)}"
        parts.append(text)
    return "enforcing now: " + "; ".join(parts)


def record(app: AppContext, order: Order, limits: Limits, *, foreground: bool) -> None:
    """Register ``limits`` for ``order`` (for ``clore guard``; merged with any registered
    before) and say who enforces them."""
    from clore.workflows import register_limits

    limits = register_limits(order.id, limits)
    app.out.info(f"Limits for order {order.id}: {describe(limits, order.currency)}.")
    if not foreground:
        app.out.info(
            "They are enforced only while a guard runs: keep `clore guard --all` running "
            "(or rent with --guard to stay in the foreground)."
        )


def guard(app: AppContext, order: Order, limits: Limits) -> None:
    """``--guard``: enforce the order's limits in the foreground until it ends."""
    from clore.workflows import guard as guard_loop
    from clore.workflows import workflows_dir

    app.out.info(
        f"guarding order {order.id} (a check every {duration(GUARD_INTERVAL)}) until it ends; "
        "Ctrl-C stops the guard, not the order"
    )
    loop = guard_loop(
        app.client(), app.clock, order_ids=[order.id], limits=limits, interval=GUARD_INTERVAL
    )
    run_events(app, loop, jsonl=False, state_path=workflows_dir() / "guards.json")
