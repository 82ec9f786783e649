"""``clore guard [--order ID | --all] --max-spend X --max-time T``: cancel orders at a limit.

An order is cancelled (with no ``issue``: crossing a budget is not a server fault) when its
spend or age would cross the limit before the next check; each cancel is logged with its
reason in ``workflows/guard.log`` under the data directory. Without limits on the command
line, the limits registered by ``rent``/``watch``/``spot keep`` apply. ``--register``
merges with the limits already registered for an order (``--replace`` drops them first);
``--list`` shows what is registered and which guard enforces it now. A warning is
reported when a wallet's runway at the current burn rate drops under ``--runway-below``.
Hooks (``--on-event``, ``--webhook``) run beside the guard and never delay a cancel. When
the guard ends with an order whose cancel failed still running, it exits 1 naming it.
"""

from __future__ import annotations

from typing import Any

import click

from clore.cli._automation import (
    deadline,
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
    help="Only record the limits for --order (a later `clore guard --all` applies them), "
    "merged with the ones registered before.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="With --register: drop the limits registered before instead of merging.",
)
@click.option(
    "--list",
    "list_only",
    is_flag=True,
    help="Show the registered limits (of --order, else all) and the guards enforcing them now.",
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
@json_option(
    help="Print each event as one JSON object per line (JSON Lines, event schema v1); "
    "with --register or --list, one JSON document."
)
@pass_app
def guard(
    app: AppContext,
    order_ids: tuple[int, ...],
    all_orders: bool,
    max_spend: str | None,
    max_time: str | None,
    register: bool,
    replace: bool,
    list_only: bool,
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
    its one check) leaving an order whose cancel failed still running. Events are printed
    one line each on stdout; --json (or --jsonl) prints each as a JSON object per line
    instead (--register and --list print one JSON document).

    \b
    Examples:
      clore guard --order 4711 --max-spend 0.001 --max-time 8h
      clore guard --all --max-time 24h --once
      clore guard --all            # enforce limits registered by rent/watch/spot keep
      clore guard --order 4711 --max-time 12h --register   # keeps its --max-spend
      clore guard --list
    """
    import msgspec

    from clore.cli._format import duration
    from clore.workflows import register_limits, registered_limits
    from clore.workflows.guard import Guard

    if list_only:
        if all_orders or max_spend is not None or max_time is not None or register or replace:
            raise CliError("--list takes only --order (and --json)", 2)
        _list(app, order_ids)
        return
    if replace and not register:
        raise CliError("--replace goes with --register", 2)
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
        stored = {oid: register_limits(oid, limits, replace=replace) for oid in order_ids}
        document = {"registered": {str(oid): msgspec.to_builtins(v) for oid, v in stored.items()}}

        def human() -> None:
            from clore.cli._limits import describe

            how = "replacing any before" if replace else "merged with any before"
            for oid, now_set in stored.items():
                shown = describe(now_set, None, note=False)
                app.out.echo(f"limits recorded for order {oid} ({how}): {shown}")

        app.out.result(document, human)
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
        app.out.info(f"guarding {which}, a check every {duration(interval)}; Ctrl-C to stop")
    # A stream: every event is a result (stdout), as JSON Lines with --json or --jsonl.
    run_events(app, loop.run(), jsonl=jsonl or app.out.json_mode, hooks=hooks)
    _fail_if_unsettled(loop.unsettled, loop.uncertain)


def _list(app: AppContext, order_ids: tuple[int, ...]) -> None:
    """``--list``: the registered limits, each order's state, and who enforces them now."""
    import msgspec

    from clore.cli._format import duration
    from clore.cli._limits import describe, enforcement
    from clore.cli._output import Column
    from clore.workflows import registered_limits
    from clore.workflows.guard import guard_leases

    known = registered_limits()
    wanted = sorted(oid for oid in known if not order_ids or oid in order_ids)
    orders = {}
    if wanted:
        orders = {o.id: o for o in app.api().my_orders(include_completed=True)}
    rows = []
    for oid in wanted:
        found = orders.get(oid)
        state = "not listed" if found is None else ("ended" if found.expired else "running")
        guards = enforcement(app, oid, known[oid])
        rows.append(
            {
                "order_id": oid,
                **msgspec.to_builtins(known[oid]),
                "currency": None if found is None else found.currency,
                "state": state,
                "enforced": bool(guards),
                "guards": guards,
            }
        )
    now = app.clock.time()
    leases = guard_leases()
    running = [
        {
            "pid": lease.pid,
            "source": lease.source,
            "order_ids": lease.order_ids,
            "interval": lease.interval,
            "last_round_at": lease.last_round_at,
            "live": lease.live(now),
        }
        for lease in leases
    ]

    def human() -> None:
        out = app.out
        if not rows:
            out.echo("No limits registered" + (" for these orders." if order_ids else "."))
        else:
            columns = [
                Column("ORDER", "right"),
                Column("STATE"),
                Column("LIMITS"),
                Column("ENFORCED NOW"),
            ]
            cells = [
                [
                    str(r["order_id"]),
                    r["state"],
                    describe(known[r["order_id"]], r["currency"], note=False),
                    _enforced_cell(r["guards"]) if r["state"] != "ended" else "—",
                ]
                for r in rows
            ]
            out.table(columns, cells)
            if any(not r["guards"] and r["state"] == "running" for r in rows):
                out.echo("No guard enforces some of these now: keep `clore guard --all` running.")
        if leases:
            out.echo("")
            out.echo("Guards running:")
        for lease in leases:
            ids = lease.order_ids
            which = "every order" if ids is None else "order " + ", ".join(map(str, ids))
            last = lease.last_round_at
            when = "no check yet" if last is None else f"last check {duration(now - last)} ago"
            stale = "" if lease.live(now) else " (not checking: no recent round)"
            out.echo(f"  pid {lease.pid} ({lease.source}): {which}, {when}{stale}")

    app.out.result({"limits": rows, "guards": running}, human)


def _enforced_cell(guards: list[dict[str, Any]]) -> str:
    """``yes: guard pid 4242, 20 s ago`` (each guard), or ``no guard running``."""
    from clore.cli._format import duration

    if not guards:
        return "no guard running"
    return "yes: " + "; ".join(
        f"{g['source']} pid {g['pid']}, {duration(g['seconds_since_round'])} ago" for g in guards
    )


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
