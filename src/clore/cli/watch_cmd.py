"""``clore watch FILTER... --max-price P [--rent ...] [--when COND]``: report matching offers,
or rent them; alert on conditions over the market and its history.

Polls the marketplace every ``--interval`` seconds (one call per poll; the SDK paces it).
A match is a server the FILTERs select that takes ``--currency``, passes the quality
floors (``--min-reliability``, ``--min-rating``/``--min-ratings``; ``--any-quality``:
none; ``clore.rentals.choice.candidate_filter``) and is not on the bad-host list.
Matches are ranked like ``clore market --sort`` (default: price, then reliability). With
``--rent`` the best match is rented with ``required_price`` locked to the price seen; a
lost race moves on to the next one.
Never more than ``--count`` rentals and never past ``--budget`` (planned cost = price per
day × ``--max-time``, or × the server's maximum rental length without it). A state file
(``--state NAME``, else named after the command's parameters) makes a restarted watcher
continue without renting twice.

``--when`` conditions (``price<p10@7d``, ``available>3``) on the market the FILTERs and
``--model`` select fire a ``history_alert`` event once per episode (the episodes kept in
the state file), and the listings fetched feed the market's history store
(``clore.workflows.history_watch``); ``--max-price`` is then optional.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

import click

from clore.cli._automation import (
    check_amount,
    check_limits,
    deadline,
    hook_options,
    interval_option,
    jsonl_option,
    limit_options,
    make_hooks,
    parse_limits,
    parse_money,
    run_events,
    until_options,
)
from clore.cli._context import EXIT_USAGE, AppContext, CliError, pass_app
from clore.cli._currency import resolve_currency, with_currency
from clore.cli._format import duration, money
from clore.cli._orderopts import OrderSpec, order_options
from clore.cli._output import json_lines_option
from clore.cli._params import Integer
from clore.cli._quality import floors_from, quality_options

if TYPE_CHECKING:
    from clore import Order
    from clore.market import Filter
    from clore.market.history import Condition, HistoryStore, Selection
    from clore.workflows import Event
    from clore.workflows.history_watch import HistoryWatch

__all__ = ["watch"]


@click.command()
@click.argument("filters", nargs=-1, metavar="[FILTER]...")
@click.option(
    "--max-price",
    metavar="PRICE",
    help="Highest price per day to match (0.0002btc, 3usd, 0.15usd/h); needed unless --when.",
)
@click.option("--rent", "do_rent", is_flag=True, help="Rent matches (else only report them).")
@click.option(
    "--spot",
    is_flag=True,
    help="Match and rent on spot: price is the spot minimum, bid at that price.",
)
@click.option(
    "--count",
    type=Integer(min=1),
    default=1,
    show_default=True,
    help="Rent at most this many servers, then stop.",
)
@click.option(
    "--budget",
    metavar="TOTAL",
    help="Stop renting when the planned cost of the rentals would pass TOTAL.",
)
@click.option(
    "--sort",
    "sort_spec",
    metavar="KEYS",
    help="Rank matches like `clore market --sort` (default: price,-reliability).",
)
@quality_options("Matches")
@click.option(
    "--when",
    "when",
    multiple=True,
    metavar="CONDITION",
    help="Alert (a history_alert event, hooks) once each time CONDITION starts to hold on "
    "the selected market: price<p10@7d, available>3, median<0.3usd (repeatable).",
)
@click.option(
    "--model", "-m", metavar="MODEL", help="Only this exact GPU model (4090 is not 4090 D)."
)
@click.option(
    "--history-db",
    metavar="PATH",
    help="The history database of --when and --record (default: the market's own).",
)
@click.option(
    "--record/--no-record",
    "record",
    default=None,
    help="Feed each listing fetched to the history database (default: with --when).",
)
@interval_option(10.0, "Seconds between marketplace polls.")
@click.option(
    "--state",
    "state_name",
    metavar="NAME",
    help="Name of the state file (default: derived from the parameters).",
)
@limit_options
@hook_options
@until_options
@order_options
@with_currency
@jsonl_option
@json_lines_option
@pass_app
def watch(
    app: AppContext,
    /,
    filters: tuple[str, ...],
    max_price: str | None,
    do_rent: bool,
    spot: bool,
    count: int,
    budget: str | None,
    sort_spec: str | None,
    when: tuple[str, ...],
    model: str | None,
    history_db: str | None,
    record: bool | None,
    interval: float,
    state_name: str | None,
    max_spend: str | None,
    max_time: str | None,
    commands: tuple[str, ...],
    webhooks: tuple[str, ...],
    hook_timeout: float,
    webhook_retries: int,
    until: str | None,
    for_: str | None,
    currency: str,
    jsonl: bool,
    **options: Any,
) -> None:
    """Watch the marketplace for servers matching FILTERs under --max-price; --rent them.

    A match takes --currency, passes the quality floors (--min-reliability,
    --min-rating; --any-quality: none) and is not on the bad-host list. Without --rent,
    matches are reported as they appear and disappear. --lock-price is
    implied (every rental locks the price seen); --wait waits for the rented orders to be
    ready after the watch ends; --dry-run reports what would be rented and sends nothing.
    Hooks (--on-event, --webhook) run for each event beside the watch, as for `monitor`.
    Events are printed one line each on stdout; --json (or --jsonl) prints each as a JSON
    object per line instead.

    --when CONDITION alerts on the market the FILTERs and --model select: METRIC OP VALUE
    with METRIC price (the cheapest ask per GPU-day), median, available, listed, rented or
    occupancy, and VALUE a number, a price, 80% or STAT@WINDOW (p10@7d: that statistic of
    the metric's hourly values in the recorded history). Each listing fetched is recorded
    into the history (--no-record: not).

    \b
    Examples:
      clore watch gpu=4090 gpus=1 --max-price 0.35usd/h
      clore watch gpu=4090 --max-price 0.0002btc --rent --count 2 --for 6h --yes
      clore watch gpu=a100 --max-price 30usd --rent --max-time 8h --budget 25usd --jsonl
      clore watch gpu=4090 --max-price 0.3usd/h --webhook https://hooks.example.com/clore
      clore watch --model 4090 --when 'price<p10@7d' --on-event 'notify-send clore'
      clore watch --model H100 --when 'available>3' --interval 60
    """
    from clore.market import (
        PriceContext,
        parse_filters,
        parse_sort,
        sort_servers,
    )
    from clore.rentals.choice import candidate_filter
    from clore.workflows import StateFile, Watcher, WatchState, state_key, workflows_dir
    from clore.workflows.render import render_event

    cur = resolve_currency(currency)
    floors = floors_from(options)
    parsed = parse_filters(filters)
    keys = parse_sort(sort_spec or ("spot_price,-reliability" if spot else "price,-reliability"))
    conditions = _conditions(when)
    if max_price is None and not conditions:
        raise CliError("give --max-price (offers to match) or --when (conditions to alert on)", 2)
    if do_rent and max_price is None:
        raise CliError("--rent needs --max-price (the highest price to rent at)", 2)
    selection = _selection(parsed, model)
    named = [
        *(c.amount.currency for c in conditions if c.amount is not None),
        check_amount(max_price, "--max-price"),
        check_amount(budget, "--budget", per_day=False),
        check_limits(max_spend, max_time),
    ]
    stop = deadline(app, until, for_)
    hooks = make_hooks(commands, webhooks, hook_timeout, webhook_retries)
    dry_run = bool(options["dry_run"])
    if not do_rent and (dry_run or max_spend or max_time or budget is not None):
        raise CliError("--dry-run, --budget, --max-spend and --max-time need --rent", 2)
    spec = OrderSpec.from_params(options) if do_rent else None
    if spec is not None:
        spec.require_login()  # as rent: no order nobody could log in to
    rates = _rates(app, cur, named, parsed)
    ctx = PriceContext(cur, rates)
    cap = parse_money(max_price, cur, "--max-price", rates=rates)
    _check_convertible(conditions, cur, rates)
    total = parse_money(budget, cur, "--budget", rates=rates, per_day=False)
    limits = parse_limits(max_spend, max_time, cur, rates=rates)
    rent = None
    if spec is not None:
        rent = spec.rent_spec("spot" if spot else "on-demand", cur)
        if not dry_run and not options["yes"]:
            _confirm(app, filters, cap, cur, count, total)
        token_line = spec.token_note()
        if token_line and not dry_run:
            app.out.info(f"{token_line} (for the rented orders; the API never returns it)")
    params: dict[str, Any] = {
        "filters": list(filters), "max_price": cap, "currency": cur, "spot": spot,
        "rent": None if rent is None else rent.image, "count": count, "budget": total,
    }  # fmt: skip
    # Only when given, so the state file of a watch without them keeps its name.
    if when:
        params["when"] = list(when)
    if model:
        params["model"] = model
    if state_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", state_name):
        raise CliError(f"--state: {state_name!r} is not a name (letters, digits, . _ -)", 2)
    path = workflows_dir() / f"watch-{state_name or state_key(params)}.json"
    if (rent is not None or conditions) and not dry_run:
        previous = StateFile(path).read(WatchState)
        made = [r for r in (previous.rentals if previous else []) if r.status != "void"]
        note = (
            f" ({len(made)} rental(s) already: this continues that watch; "
            "--state NAME starts a new one)"
            if made
            else ""
        )
        app.out.info(f"state: {path}{note}")
    recording = bool(conditions) if record is None else record
    store = _history_store(app, history_db, conditions, recording)
    history = _history_watch(app, store, conditions, selection, cur, rates, recording)
    selected = selection.predicate(ctx)
    quality = candidate_filter(cur, spot=spot, floors=floors)
    watcher = Watcher(
        app.client(),
        app.clock,
        match=lambda server: selected(server) and quality(server),
        rank=lambda servers: sort_servers(servers, keys, ctx),
        max_price=cap,
        rent=rent,
        currency=cur,
        spot=spot,
        count=count,
        budget=total,
        limits=limits,
        until=stop,
        interval=interval,
        dry_run=dry_run,
        state=StateFile(path) if rent is not None or conditions else None,
        history=history,
        report=cap is not None,
    )
    what = selection.describe() if model else " ".join(filters) or "any server"
    out = app.out
    every = f"a poll every {duration(interval)}; Ctrl-C to stop"
    if cap is not None:
        doing = f"renting up to {count}" if rent is not None else "reporting matches"
        out.info(f"watching for {what} at ≤ {money(cap, cur, 'day')} ({doing}), {every}")
    if store is not None:
        alerts = f"alerting when {' or '.join(when)}" if when else "recording"
        out.info(
            f"watching {what}: {alerts} (history: {store.path}"
            f"{'' if recording else ', not recorded into'}), {every}"
        )
    # A stream: every event is a result (stdout), as JSON Lines with --json or --jsonl.
    json_lines = jsonl or out.json_mode
    try:
        seen = run_events(
            app,
            watcher.run(),
            jsonl=json_lines,
            hooks=hooks,
            state_path=path if rent or conditions else None,
        )
    finally:
        if store is not None:
            store.close()
    rented = [e for e in seen if e.kind == "rented" and e.order_id is not None]
    if options["wait"] and not dry_run:
        for event in rented:
            assert event.order_id is not None
            with out.waiting(f"waiting for order {event.order_id} to be ready"):
                order = app.client().wait_for_order(event.order_id, timeout=options["timeout"])
            jupyter = spec.jupyter_url(order.http_url) if spec is not None else None
            ready = _ready_event(app, order, jupyter)
            if json_lines:
                out.json_line(ready.to_json_line())
            out.event(render_event(ready), json_lines=json_lines)


def _conditions(when: tuple[str, ...]) -> list[Condition]:
    """The ``--when`` conditions (exit 2 naming the bad one), checked before any request."""
    if not when:
        return []
    from clore.cli._history import history_errors
    from clore.market.history import parse_condition

    with history_errors("--when"):
        return [parse_condition(text) for text in when]


def _check_convertible(
    conditions: list[Condition], currency: str, rates: dict[str, float] | None
) -> None:
    """A price condition in another currency needs the USD rates (else it never holds)."""
    from clore.market import label

    for cond in conditions:
        named = cond.amount.in_currency(currency) if cond.amount is not None else currency
        if named != currency and not rates:
            raise CliError(
                f"--when: cannot convert {label(named)} to {label(currency)} without USD "
                f"rates ({cond.text}); give the price in {label(currency)}",
                EXIT_USAGE,
            )


def _selection(parsed: list[Filter], model: str | None) -> Selection:
    """The market the watch looks at: the FILTER words and the exact --model."""
    from clore.market.history import Selection

    if model is not None and not model.strip():
        raise CliError("--model: give a GPU model (4090, A100 80GB)", EXIT_USAGE)
    return Selection(model=model, filters=tuple(parsed))


def _history_store(
    app: AppContext, db: str | None, conditions: list[Condition], recording: bool
) -> HistoryStore | None:
    """The market's history database, when the watch records or alerts."""
    if not conditions and not recording:
        return None
    from clore.cli._history import open_history

    return open_history(app, db, recording=recording)


def _history_watch(
    app: AppContext,
    store: HistoryStore | None,
    conditions: list[Condition],
    selection: Selection,
    currency: str,
    rates: dict[str, float] | None,
    recording: bool,
) -> HistoryWatch | None:
    if store is None:
        return None
    from clore.cli._history import history_errors
    from clore.market.history import HistoryAlert
    from clore.workflows.history_watch import HistoryWatch

    alert = None
    if conditions:
        with history_errors("--when"):
            alert = HistoryAlert(conditions, selection, store, currency=currency)
    return HistoryWatch(
        store=store,
        alert=alert,
        record=recording,
        rates=rates,
        # USD rates come from spot_marketplace, which needs a key (as for market record).
        rates_client=app.client() if app.has_key() else None,
    )


def _rates(
    app: AppContext, currency: str, named: list[str | None], filters: list[Filter]
) -> dict[str, float] | None:
    """USD rates, fetched only when an amount or a price filter is in another currency."""
    from clore.cli._marketdata import load

    for flt in filters:
        if flt.field.kind == "price":
            named.append(flt.values[0].currency)
    if all(name in (None, currency) for name in named):
        return None
    return load(app, rates=True).rates


def _confirm(
    app: AppContext,
    filters: tuple[str, ...],
    cap: float | None,
    currency: str,
    count: int,
    budget: float | None,
) -> None:
    if not sys.stdin.isatty():
        raise CliError("renting unattended needs --yes (or try --dry-run first)", 2)
    what = " ".join(filters) or "any server"
    limit = f", budget {money(budget, currency)}" if budget is not None else ""
    app.out.info(
        f"Rent up to {count} × {what} at ≤ {money(cap, currency, 'day')} as they appear{limit}."
    )
    if not click.confirm("Proceed?", default=False, err=True):
        raise CliError("not confirmed; nothing was rented (--yes skips the question)", 1)


def _ready_event(app: AppContext, order: Order, jupyter: str | None) -> Event:
    """The ``ready`` event of an order the watch rented, once ``--wait`` saw it ready."""
    from clore.workflows.events import make_event

    reach = order.ssh_command() or order.http_url or "no endpoint"
    message = f"order {order.id} ready: {reach}" + (f"; jupyter: {jupyter}" if jupyter else "")
    return make_event(
        "watch",
        "ready",
        app.clock.time(),
        message,
        order=order,
        ssh=order.ssh_command(),
        http_url=order.http_url,
    )
