"""``clore monitor``: order events, with hooks (a command, a webhook) run for each."""

from __future__ import annotations

import click

from clore.cli._automation import (
    deadline,
    hook_options,
    interval_option,
    jsonl_option,
    make_hooks,
    parse_duration_option,
    require_orders,
    run_events,
    until_options,
)
from clore.cli._context import AppContext, pass_app
from clore.cli._format import duration
from clore.cli._output import json_lines_option
from clore.cli._params import Id, Number

__all__ = ["monitor"]


@click.command()
@click.option(
    "--order", "order_ids", type=Id(), multiple=True, metavar="ID", help="Only these orders."
)
@interval_option(30.0)
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
    type=Number(min=0),
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
@hook_options
@until_options
@jsonl_option
@json_lines_option
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
    cancelled, spend, low_runway (and error, hook_failed, hook_dropped), one line each on
    stdout; --json (or --jsonl) prints each as a JSON object per line instead. Hooks run
    beside the monitor, each within --hook-timeout: a failing or slow hook is reported and
    never stops or delays a poll.

    \b
    Examples:
      clore monitor --jsonl >> events.jsonl
      clore monitor --on-event 'notify-send "clore" "$(jq -r .message)"'
      clore monitor --webhook https://hooks.example.com/clore --expiring-within 2h
    """
    from clore.workflows import OrderMonitor, tcp_probe

    lead = parse_duration_option("--expiring-within", expiring_within, zero=True) or 0.0
    runway = parse_duration_option("--runway-below", runway_below, zero=True)
    stop = deadline(app, until, for_)
    hooks = make_hooks(commands, webhooks, hook_timeout, webhook_retries)
    require_orders(app, order_ids)
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
    which = f"order(s) {', '.join(map(str, order_ids))}" if order_ids else "your orders"
    app.out.info(f"monitoring {which}, a poll every {duration(interval)}; Ctrl-C to stop")
    # A stream: every event is a result (stdout), as JSON Lines with --json or --jsonl.
    run_events(app, loop.run(), jsonl=jsonl or app.out.json_mode, hooks=hooks)
