"""What every automation command shares (``watch``, ``monitor``, ``spot keep``, ``guard``,
``orders --watch``): their common options, amount and limit parsing, and ``run_events``
(one line per event on stdout, or JSON Lines there with ``--json``/``--jsonl`` and the
human lines as progress on stderr; hooks; a clean Ctrl-C with exit 130 and state kept).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clore.cli._context import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    AppContext,
    CliError,
)
from clore.cli._params import Integer, Number

if TYPE_CHECKING:
    from clore.workflows import Event, Hooks, Limits

__all__ = [
    "check_amount",
    "check_limits",
    "deadline",
    "hook_options",
    "interval_option",
    "jsonl_option",
    "limit_options",
    "make_hooks",
    "parse_duration_option",
    "parse_limits",
    "parse_money",
    "require_orders",
    "run_events",
    "seconds_option",
    "until_options",
]


# ---- options ------------------------------------------------------------------------------


def seconds_option(name: str, default: float, help: str) -> Callable[[Any], Any]:
    """A ``--NAME SECONDS`` option of at least one second (``--interval``, ``--timeout``)."""
    return click.option(
        name,
        type=Number(min=1),
        default=default,
        show_default=True,
        metavar="SECONDS",
        help=help,
    )


def interval_option(default: float, help: str = "Seconds between polls.") -> Callable[[Any], Any]:
    """``--interval SECONDS``: the poll period of a loop."""
    return seconds_option("--interval", default, help)


def jsonl_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--jsonl``: every event as one JSON object per line on stdout."""
    return click.option(
        "--jsonl", is_flag=True, help="Print each event as one JSON object per line on stdout."
    )(fn)


def until_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--until TIME`` and ``--for DURATION``: when a loop ends."""
    fn = click.option(
        "--for", "for_", metavar="DURATION", help="Stop after this long (90s, 15m, 2h, 1d)."
    )(fn)
    return click.option(
        "--until", metavar="TIME", help="Stop at this time (HH:MM, ISO date-time, unix time)."
    )(fn)


def limit_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--max-spend AMOUNT`` and ``--max-time DURATION`` (budget guards of the loops)."""
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


def hook_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--on-event CMD``, ``--webhook URL``, ``--hook-timeout``, ``--webhook-retries``."""
    fn = click.option(
        "--webhook-retries",
        type=Integer(0, 10),
        default=3,
        show_default=True,
        help="Retries of a failed webhook POST (exponential backoff, within --hook-timeout).",
    )(fn)
    fn = click.option(
        "--hook-timeout",
        type=Number(min=0.1),
        default=10.0,
        show_default=True,
        metavar="SECONDS",
        help="Deadline of one hook for one event: a command run, or a webhook's attempts.",
    )(fn)
    fn = click.option(
        "--webhook",
        "webhooks",
        multiple=True,
        metavar="URL",
        help="POST each event as JSON to URL, with retries (repeatable).",
    )(fn)
    return click.option(
        "--on-event",
        "commands",
        multiple=True,
        metavar="CMD",
        help="Run CMD for each event, the event as JSON on stdin (repeatable).",
    )(fn)


def make_hooks(
    commands: tuple[str, ...], webhooks: tuple[str, ...], timeout: float, retries: int
) -> Hooks | None:
    """The hooks of ``hook_options`` (exit 2 for a URL that is not http(s)); None if none."""
    from clore.workflows import Hooks

    for url in webhooks:
        if not url.lower().startswith(("http://", "https://")):
            raise CliError(f"--webhook: expected an http:// or https:// URL, got {url!r}", 2)
    if not commands and not webhooks:
        return None
    # Hooks run on their worker thread in real time, whatever clock the loop has.
    return Hooks(
        commands, webhooks, command_timeout=timeout, webhook_timeout=timeout, retries=retries
    )


# ---- parsing ------------------------------------------------------------------------------


def deadline(app: AppContext, until: str | None, for_: str | None) -> float | None:
    """Unix time from ``--until``/``--for`` (exit 2 when both or malformed)."""
    from clore.cli._params import parse_until

    if until is not None and for_ is not None:
        raise CliError("give --until or --for, not both", 2)
    now = app.clock.time()
    if until is not None:
        return parse_until(until, now)
    seconds = parse_duration_option("--for", for_)
    return None if seconds is None else now + seconds


def check_amount(text: str | None, option: str, *, per_day: bool = True) -> str | None:
    """Check the form of an amount before anything is sent (exit 2 when malformed); the
    currency it names (converting it to another may need USD rates), else None."""
    from clore.cli._params import parse_price

    if text is None:
        return None
    amount = parse_price(text, option)
    if amount.per_hour and not per_day:
        raise CliError(f"{option}: a total amount, not a rate (drop /h)", 2)
    return amount.currency


def parse_money(
    text: str | None,
    currency: str,
    option: str,
    *,
    rates: Mapping[str, float] | None = None,
    per_day: bool = True,
    default: str | None = None,
) -> float | None:
    """An amount in ``currency``: ``0.0002``, ``0.0002btc``, ``3usd`` (converted with rates),
    and per-hour forms (``0.2usd/h``) when ``per_day``; exit 2 on anything else.

    A bare number is in ``default`` (else ``currency``) and is converted like a suffixed one.
    """
    from clore.market import convert, label, parse_amount

    if text is None:
        return None
    check_amount(text, option, per_day=per_day)
    amount = parse_amount(text)
    value = amount.per_day if per_day else amount.value
    source = amount.in_currency(default or currency)
    converted = convert(value, source, currency, rates)
    if converted is None:
        raise CliError(
            f"{option}: cannot convert {label(source)} to {label(currency)} without USD rates; "
            f"give the amount in {label(currency)}",
            2,
        )
    return converted


def check_limits(max_spend: str | None, max_time: str | None) -> str | None:
    """Check ``--max-spend``/``--max-time`` before anything is sent (exit 2 when malformed);
    the currency the spend names, else None."""
    parse_duration_option("--max-time", max_time)
    return check_amount(max_spend, "--max-spend", per_day=False)


def parse_duration_option(option: str, text: str | None, *, zero: bool = False) -> float | None:
    """Seconds of a DURATION option (``90s``, ``15m``, ``2h``, ``1d``, ``1h30m``); None when
    not given; exit 2 naming the option when malformed, or zero unless ``zero`` allows it."""
    from clore.cli._params import parse_duration

    if text is None:
        return None
    return parse_duration(text, option, zero=zero)


def parse_limits(
    max_spend: str | None,
    max_time: str | None,
    currency: str,
    *,
    rates: Mapping[str, float] | None = None,
) -> Limits:
    """``Limits`` from ``--max-spend``/``--max-time`` (exit 2 when malformed); a spend in
    another currency is converted to ``currency`` with ``rates`` (``Limits.parse``)."""
    from clore.workflows.plan import LimitError, Limits

    # The command line's rules first (ASCII digits, at most 100 years), naming the option.
    seconds = parse_duration_option("--max-time", max_time)
    check_amount(max_spend, "--max-spend", per_day=False)
    try:
        return Limits.parse(max_spend, seconds, currency, rates=rates)
    except LimitError as exc:
        option = "--" + exc.name.replace("_", "-")
        raise CliError(f"{option}: {exc.reason}", EXIT_USAGE) from None


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


# ---- running a loop -----------------------------------------------------------------------


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
    """Drive a workflow: print each event, run hooks; Ctrl-C stops it cleanly (exit 130).

    Every stream follows the output rules (docs/cli.md): each event is a result, its line
    on stdout; with ``jsonl`` (the command's ``--json`` or ``--jsonl``) its JSON object
    is written there instead, one line each, and the human line is progress on stderr
    (``Output.event``). ``quiet`` writes no human line (for a caller that draws the
    events itself); ``on_event`` is called with each event once it is written.

    Hooks run beside the loop (``clore.workflows.hook_queue``): their reports are printed
    as they come, from the hooks' thread, and the loop never waits for them; when it ends
    they get one hook deadline more to finish.
    """
    from clore.workflows.hook_queue import HookQueue
    from clore.workflows.render import render_event

    out = app.out
    seen: list[Event] = []
    lock = threading.RLock()  # the hooks' thread reports through emit too

    def emit(event: Event) -> None:
        with lock:
            seen.append(event)
            if jsonl:
                out.json_line(event.to_json_line())
            if not quiet:
                out.event(render_event(event), json_lines=jsonl)
            if on_event is not None:
                on_event(event)

    queue = HookQueue(hooks, emit) if hooks else None
    try:
        for event in events:
            emit(event)
            if queue is not None:
                queue.submit(event)
    except KeyboardInterrupt:
        # Closing the generator runs its cleanup (state files are already written).
        close = getattr(events, "close", None)
        if callable(close):
            close()
        if queue is not None:
            queue.close(grace=0.0)  # stop the hooks too: kill what runs, report the rest
        where = f"; state kept in {state_path}" if state_path is not None else ""
        out.info(f"stopped (Ctrl-C){where}")
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        if queue is not None:
            queue.close()
        elif hooks is not None:
            hooks.close()
    with lock:
        return list(seen)
