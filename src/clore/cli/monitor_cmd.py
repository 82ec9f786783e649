"""``clore monitor``: order events with hooks; and what every automation command shares.

Shared by ``watch``, ``spot keep``, ``guard`` and ``monitor``: ``run_events`` (one progress
line per event on stderr, ``--jsonl`` events on stdout, hooks, clean Ctrl-C with exit 130
and state kept), the ``--until``/``--for`` and ``--jsonl`` options, and amount parsing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clore.cli._context import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    AppContext,
    CliError,
    pass_app,
)
from clore.cli._output import json_option

if TYPE_CHECKING:
    from clore.workflows import Event, Hooks

__all__ = [
    "deadline",
    "jsonl_option",
    "limit_options",
    "monitor",
    "parse_limits",
    "parse_money",
    "require_orders",
    "run_events",
    "until_options",
]


# ---- options shared by the loops ------------------------------------------------------------


def jsonl_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--jsonl", is_flag=True, help="Print each event as one JSON object per line on stdout."
    )(fn)


def until_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--for", "for_", metavar="DURATION", help="Stop after this long (90s, 15m, 2h, 1d)."
    )(fn)
    return click.option(
        "--until", metavar="TIME", help="Stop at this time (HH:MM, ISO date-time, unix time)."
    )(fn)


def limit_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--max-time",
        metavar="DURATION",
        help="Cancel an order when it has run this long (checked one poll ahead).",
    )(fn)
    return click.option(
        "--max-spend",
        metavar="AMOUNT",
        help="Cancel an order before its spend crosses AMOUNT (in the order's currency).",
    )(fn)


def deadline(app: AppContext, until: str | None, for_: str | None) -> float | None:
    """Unix time from ``--until``/``--for`` (exit 2 when both or malformed)."""
    from clore.workflows.render import parse_duration, parse_until

    if until and for_:
        raise CliError("give --until or --for, not both", 2)
    now = app.clock.time()
    try:
        if until:
            return parse_until(until, now)
        if for_:
            return now + parse_duration(for_)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    return None


def parse_money(
    text: str | None,
    currency: str,
    option: str,
    *,
    rates: dict[str, float] | None = None,
    per_day: bool = True,
) -> float | None:
    """An amount in ``currency``: ``0.0002``, ``0.0002btc``, ``3usd`` (converted with rates),
    and per-hour forms (``0.2usd/h``) when ``per_day``; exit 2 on anything else."""
    from clore.market import convert, label, parse_amount

    if text is None:
        return None
    try:
        amount = parse_amount(text)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}", 2) from None
    if amount.per_hour and not per_day:
        raise CliError(f"{option}: a total amount, not a rate (drop /h)", 2)
    value = amount.per_day if per_day else amount.value
    source = amount.in_currency(currency)
    converted = convert(value, source, currency, rates)
    if converted is None:
        raise CliError(
            f"{option}: cannot convert {label(source)} to {label(currency)} without USD rates; "
            f"give the amount in {label(currency)}",
            2,
        )
    if converted <= 0:
        raise CliError(f"{option}: must be greater than zero", 2)
    return converted


def parse_limits(
    max_spend: str | None,
    max_time: str | None,
    currency: str,
    *,
    rates: dict[str, float] | None = None,
) -> Any:
    """``Limits`` from ``--max-spend``/``--max-time`` (exit 2 when malformed); a spend in
    another currency is converted to ``currency`` with ``rates``."""
    from clore.workflows import Limits
    from clore.workflows.render import parse_duration

    seconds = None
    if max_time is not None:
        try:
            seconds = parse_duration(max_time)
        except ValueError as exc:
            raise CliError(f"--max-time: {exc}", 2) from None
    spend = parse_money(max_spend, currency, "--max-spend", rates=rates, per_day=False)
    if seconds is not None and seconds <= 0:
        raise CliError("--max-time: must be greater than zero", 2)
    return Limits(max_spend=spend, max_time=seconds)


def require_orders(app: AppContext, order_ids: tuple[int, ...] | list[int]) -> None:
    """``--order ID``: exit 4 for an id that is not among your orders, 1 for an ended one
    (the loops would otherwise end at once, silently, with nothing to watch)."""
    if not order_ids:
        return
    known = {o.id: o for o in app.client().my_orders(include_completed=True)}
    for order_id in order_ids:
        found = known.get(order_id)
        if found is None:
            raise CliError(f"order {order_id} is not among your orders", EXIT_NOT_FOUND)
        if found.expired:
            raise CliError(f"order {order_id} has already ended", EXIT_API)


# ---- running a loop ---------------------------------------------------------------------------


def run_events(
    app: AppContext,
    events: Iterator[Event],
    *,
    jsonl: bool,
    hooks: Hooks | None = None,
    state_path: Path | None = None,
    quiet: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> list[Event]:
    """Drive a workflow: print each event, run hooks; Ctrl-C stops it cleanly (exit 130)."""
    from clore.workflows.render import render_event

    out = app.out
    seen: list[Event] = []

    def emit(event: Event) -> None:
        seen.append(event)
        if not quiet:
            out.info(render_event(event))
        if jsonl:
            out.stdout.write(event.to_json_line() + "\n")
            out.stdout.flush()
        if on_event is not None:
            on_event(event)

    try:
        for event in events:
            emit(event)
            if hooks:
                for failed in hooks.dispatch(event):
                    emit(failed)
    except KeyboardInterrupt:
        # Closing the generator runs its cleanup (state files are already written).
        close = getattr(events, "close", None)
        if callable(close):
            close()
        where = f"; state kept in {state_path}" if state_path is not None else ""
        out.info(f"stopped (Ctrl-C){where}")
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        if hooks is not None:
            hooks.close()
    return seen


# ---- clore monitor ------------------------------------------------------------------------------


@click.command()
@click.option(
    "--order", "order_ids", type=int, multiple=True, metavar="ID", help="Only these orders."
)
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between polls.",
)
@click.option(
    "--expiring-within",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="Report an order as expiring this long before ct + mrl.",
)
@click.option(
    "--spend-threshold",
    "thresholds",
    multiple=True,
    type=click.FloatRange(min=0),
    metavar="AMOUNT",
    help="Report when an order's spend crosses AMOUNT (repeatable; order currency).",
)
@click.option(
    "--runway-below",
    default="1d",
    show_default=True,
    metavar="DURATION",
    help="Warn when a wallet lasts less than this at the current burn rate ('0': off).",
)
@click.option(
    "--probe-ssh",
    is_flag=True,
    help="Report 'ready' only once a TCP connection to the SSH port opens.",
)
@click.option(
    "--on-event",
    "commands",
    multiple=True,
    metavar="CMD",
    help="Run CMD for each event, the event as JSON on stdin (repeatable).",
)
@click.option(
    "--webhook",
    "webhooks",
    multiple=True,
    metavar="URL",
    help="POST each event as JSON to URL, with retries (repeatable).",
)
@click.option(
    "--hook-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Timeout of one hook run or webhook attempt.",
)
@click.option(
    "--webhook-retries",
    type=click.IntRange(0, 10),
    default=3,
    show_default=True,
    help="Retries of a failed webhook POST (exponential backoff).",
)
@until_options
@jsonl_option
@json_option
@pass_app
def monitor(
    app: AppContext,
    order_ids: tuple[int, ...],
    interval: float,
    expiring_within: str,
    thresholds: tuple[float, ...],
    runway_below: str,
    probe_ssh: bool,
    commands: tuple[str, ...],
    webhooks: tuple[str, ...],
    hook_timeout: float,
    webhook_retries: int,
    until: str | None,
    for_: str | None,
    jsonl: bool,
) -> None:
    """Watch your orders and report events; run hooks on them.

    Events: created, ready, outbid, paused, resumed, price_changed, expiring, expired,
    cancelled, spend, low_runway (and error, hook_failed). A failing hook or webhook is
    reported as a hook_failed event and never stops the monitor.

    \b
    Examples:
      clore monitor --jsonl >> events.jsonl
      clore monitor --on-event 'notify-send "clore" "$(jq -r .message)"'
      clore monitor --webhook https://hooks.example.com/clore --expiring-within 2h
    """
    from clore.workflows import Hooks, OrderMonitor, tcp_probe
    from clore.workflows.render import parse_duration

    try:
        lead = parse_duration(expiring_within)
        runway = parse_duration(runway_below)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    stop = deadline(app, until, for_)
    require_orders(app, order_ids)
    hooks = Hooks(
        commands,
        webhooks,
        command_timeout=hook_timeout,
        webhook_timeout=hook_timeout,
        retries=webhook_retries,
        clock=app.clock,
    )
    loop = OrderMonitor(
        app.client(),
        app.clock,
        interval=interval,
        expiring_within=lead,
        spend_thresholds=thresholds,
        runway_below=runway or None,
        order_ids=order_ids or None,
        probe=tcp_probe if probe_ssh else None,
        until=stop,
    )
    seen = run_events(app, loop.run(), jsonl=jsonl, hooks=hooks)
    if app.out.json_mode and not jsonl:
        app.out.json({"events": [e.to_json() for e in seen]})
