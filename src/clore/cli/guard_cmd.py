"""``clore guard [--order ID | --all] --max-spend X --max-time T``: cancel orders at a limit.

An order is cancelled (with no ``issue``: crossing a budget is not a server fault) when its
spend or age would cross the limit before the next check; each cancel is logged with its
reason in ``workflows/guard.log`` under the data directory. Without limits on the command
line, the limits registered by ``rent``/``watch``/``spot keep`` apply. A warning is
reported when a wallet's runway at the current burn rate drops under ``--runway-below``.
Hooks (``--on-event``, ``--webhook``) run beside the guard and never delay a cancel. When
the guard ends with an order whose cancel failed still running, it exits 1 naming it.
"""

from __future__ import annotations

import click

from clore.cli._automation import (
    deadline,
    events_document,
    hook_options,
    interval_option,
    jsonl_option,
    limit_options,
    make_hooks,
    parse_duration_option,
    parse_limits,
    require_orders,
    run_events,
    until_options,
)
from clore.cli._context import EXIT_API, AppContext, CliError, pass_app
from clore.cli._output import json_option
from clore.cli._params import Id

__all__ = ["guard"]


@click.command()
@click.option(
    "--order",
    "order_ids",
    type=Id(),
    multiple=True,
    metavar="ID",
    help="Guard this order (repeatable).",
)
@click.option("--all", "all_orders", is_flag=True, help="Guard every running order.")
@limit_options
@click.option(
    "--register",
    is_flag=True,
    help="Only record the limits for --order (a later `clore guard --all` applies them).",
)
@interval_option(60.0, "Seconds between checks.")
@click.option(
    "--runway-below",
    default="1d",
    show_default=True,
    metavar="DURATION",
    help="Warn when a wallet lasts less than this at the burn rate ('0': off).",
)
@click.option("--once", is_flag=True, help="Check once and exit (for cron).")
@hook_options
@until_options
@jsonl_option
@json_option
@pass_app
def guard(
    app: AppContext,
    order_ids: tuple[int, ...],
    all_orders: bool,
    max_spend: str | None,
    max_time: str | None,
    register: bool,
    interval: float,
    runway_below: str,
    once: bool,
    commands: tuple[str, ...],
    webhooks: tuple[str, ...],
    hook_timeout: float,
    webhook_retries: int,
    until: str | None,
    for_: str | None,
    jsonl: bool,
) -> None:
    """Cancel orders that cross --max-spend or --max-time; warn on a short wallet runway.

    --max-spend is in each order's own currency. Exits 1 when it ends (with --once: after
    its one check) leaving an order whose cancel failed still running.

    \b
    Examples:
      clore guard --order 4711 --max-spend 0.001 --max-time 8h
      clore guard --all --max-time 24h --once
      clore guard --all            # enforce limits registered by rent/watch/spot keep
    """
    import msgspec

    from clore.workflows import register_limits, registered_limits
    from clore.workflows.guard import Guard

    if bool(order_ids) == all_orders:
        raise CliError("give --order ID (repeatable) or --all", 2)
    if max_spend is not None and any(c.isalpha() for c in max_spend):
        raise CliError("--max-spend: give a bare number, in each order's own currency", 2)
    # A bare amount is taken as is, so the currency passed here plays no part.
    limits = parse_limits(max_spend, max_time, "bitcoin")
    runway = parse_duration_option("--runway-below", runway_below, zero=True)
    stop = deadline(app, until, for_)
    hooks = make_hooks(commands, webhooks, hook_timeout, webhook_retries)
    require_orders(app, order_ids)
    if register:
        if not order_ids or not limits:
            raise CliError("--register needs --order and --max-spend or --max-time", 2)
        for order_id in order_ids:
            register_limits(order_id, limits)
        document = {"registered": {str(oid): msgspec.to_builtins(limits) for oid in order_ids}}
        app.out.result(
            document,
            lambda: app.out.echo(f"limits recorded for {', '.join(map(str, order_ids))}"),
        )
        return
    if not limits:
        known = registered_limits()
        relevant = [oid for oid in known if not order_ids or oid in order_ids]
        if not relevant:
            app.out.warn(
                "no limits to enforce: none given (--max-spend, --max-time) and none registered "
                "for these orders" + ("; only watching the wallet runway" if runway else "")
            )
    loop = Guard(
        app.client(),
        app.clock,
        order_ids=list(order_ids) if order_ids else None,
        limits=limits if limits else None,
        interval=interval,
        runway_below=runway or None,
        until=stop,
        once=once,
    )
    if not once:
        which = f"order(s) {', '.join(map(str, order_ids))}" if order_ids else "every order"
        app.out.info(f"guarding {which}, a check every {interval:g} s; Ctrl-C to stop")
    seen = run_events(app, loop.run(), jsonl=jsonl, hooks=hooks)
    events_document(app, seen, jsonl)
    _fail_if_unsettled(loop.unsettled, loop.uncertain)


def _fail_if_unsettled(unsettled: list[int], uncertain: list[int]) -> None:
    """Exit 1 naming the orders a failed cancel left running (they keep billing)."""
    running = [oid for oid in unsettled if oid not in uncertain]
    parts = []
    if running:
        ids = ", ".join(map(str, running))
        verb = "is" if len(running) == 1 else "are"
        parts.append(f"order {ids} {verb} still running: the guard's cancel failed")
    if uncertain:
        ids = ", ".join(map(str, uncertain))
        parts.append(f"order {ids} may still be running: the guard's cancel got no answer")
    if parts:
        raise CliError("; ".join(parts) + " (see `clore orders`)", EXIT_API)
