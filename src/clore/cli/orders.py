"""``clore orders`` (table, ``--watch``) and ``clore cancel ID...`` (``clore order ID`` is
``order_cmd``).

States are ``_states.state_word``: ``Order.state_at`` told apart further by what this
client did (an order its budget guard stopped is ``budget_stopped``, not ``cancelled``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from clore.cli._automation import interval_option
from clore.cli._context import AppContext, CliError, pass_app
from clore.cli._format import duration, gpu_text, timestamp
from clore.cli._orders import Stops, collect, record
from clore.cli._output import Column, Output, json_option
from clore.cli._params import Id, Integer
from clore.cli._states import STATE_STYLES, load_stops, state_word
from clore.market import format_amount, label

if TYPE_CHECKING:
    from clore import Order
    from clore.workflows import Event, OrderMonitor

__all__ = ["cancel", "orders"]

COLUMNS = [
    Column("ID", "right", 99),
    Column("Server", "right", 6),
    Column("GPU", "left", 7),
    Column("Type", "left", 8),
    Column("Price/day", "right", 9),
    Column("Price/h", "right", 4),
    Column("State", "left", 99),
    Column("Spend", "right", 9),
    Column("Time left", "right", 8),
    Column("SSH", "left", 5),
]


def _row(order: Order, now: float, active: dict[int, bool], stops: Stops) -> list[str]:
    cur = order.currency or "bitcoin"
    state = state_word(order, now, active.get(order.id), stops)
    endpoint = order.ssh_endpoint
    return [
        str(order.id),
        str(order.si),
        gpu_text(order),
        "spot" if order.spot else "on-demand",
        f"{format_amount(float(order.price), cur)} {label(cur)}",
        f"{format_amount(float(order.price) / 24, cur)} {label(cur)}",
        state,
        f"{format_amount(float(order.spend), cur)} {label(cur)}",
        "—" if order.expired else duration(order.time_left(now).total_seconds()),
        f"{endpoint[0]}:{endpoint[1]}" if endpoint else "—",
    ]


def _styles(
    found: list[Order], now: float, active: dict[int, bool], changed: set[int], stops: Stops
) -> list[str | None]:
    return [
        "bold reverse"
        if o.id in changed
        else STATE_STYLES.get(state_word(o, now, active.get(o.id), stops))
        for o in found
    ]


def _render(
    out: Output, found: list[Order], now: float, active: dict[int, bool], stops: Stops
) -> None:
    if not found:
        out.echo("No orders.")
        return
    rows = [_row(o, now, active, stops) for o in found]
    out.table(COLUMNS, rows, styles=_styles(found, now, active, set(), stops))


def _document(
    found: list[Order], now: float, active: dict[int, bool], stops: Stops
) -> dict[str, Any]:
    return {"orders": [record(o, now, active.get(o.id), stops) for o in found]}


@click.command()
@click.option("--all", "include_completed", is_flag=True, help="Include ended orders.")
@click.option(
    "--watch",
    is_flag=True,
    help="Keep watching and report changes (a live table on a terminal, event lines when "
    "piped, JSON Lines with --json).",
)
@interval_option(10.0, "Seconds between polls of --watch.")
@click.option(
    "--count",
    type=Integer(min=1),
    metavar="N",
    help="With --watch: stop after N polls.",
)
@json_option
@pass_app
def orders(
    app: AppContext, include_completed: bool, watch: bool, interval: float, count: int | None
) -> None:
    """List your orders: state, price per day and hour, spend and time left.

    States: provisioning, ready, outbid (spot, not winning), offline, expired (ran its
    course), cancelled (ended early), budget_stopped (ended by your budget guard).

    --watch reports what `clore monitor` reports (created, ready, outbid, paused, resumed,
    price_changed, expiring, expired, cancelled, error): above a live table on a terminal,
    as one line per event when piped, as JSON Lines (event schema v1) with --json.
    """
    if count is not None and not watch:
        raise CliError("--count needs --watch", 2)
    if watch:
        _watch(app, include_completed, interval, count)
        return
    found, active = collect(app, include_completed)
    now = app.server_time()
    stops = load_stops()
    app.out.result(
        _document(found, now, active, stops), lambda: _render(app.out, found, now, active, stops)
    )


def _watch(app: AppContext, include_completed: bool, interval: float, count: int | None) -> None:
    """Run the order monitor and show its events (see ``orders``' help for the three forms)."""
    from clore.cli._automation import run_events
    from clore.workflows import OrderMonitor
    from clore.workflows.render import render_event

    out = app.out
    client = app.client()
    monitor = OrderMonitor(client, app.clock, interval=interval)
    view: _LiveView | None = None
    if out.tty and not out.json_mode:
        ended = (
            [o for o in client.my_orders(include_completed=True) if o.expired]
            if include_completed
            else []
        )
        view = _LiveView(app, monitor, interval, ended if include_completed else None)

    def events() -> Iterator[Event]:
        for polls, batch in enumerate(monitor.rounds(), start=1):
            yield from batch
            if view is not None:
                view.draw(batch)
            if count is not None and polls >= count:
                return

    def show(event: Event) -> None:
        if view is None and not out.json_mode:
            out.echo(render_event(event))

    try:
        run_events(app, events(), jsonl=out.json_mode, quiet=True, on_event=show)
    finally:
        if view is not None:
            view.stop()


#: Events that change an order's row (a ``tracking`` event only reports what was there).
_QUIET_KINDS = frozenset({"tracking"})
#: How many recent events the live view keeps under its table.
_RECENT = 8


class _LiveView:
    """``orders --watch`` on a terminal: the monitor's orders as a table, the latest events
    below it; rows that just changed are highlighted until the next poll."""

    def __init__(
        self,
        app: AppContext,
        monitor: OrderMonitor,
        interval: float,
        ended: list[Order] | None,
    ) -> None:
        self.app = app
        self.monitor = monitor
        self.interval = interval
        # None: ended orders leave the table; a dict: they stay (``--all``).
        self.ended = None if ended is None else {o.id: o for o in ended}
        self.recent: deque[Event] = deque(maxlen=_RECENT)
        self.live: Any = None

    def draw(self, batch: list[Event]) -> None:
        """Redraw after a poll whose events are ``batch``."""
        import msgspec
        from rich.console import Group
        from rich.text import Text

        from clore.workflows.render import ALERT_KINDS, render_event

        out = self.app.out
        now = self.app.server_time()  # time left is on the server's clock
        self.recent.extend(batch)
        changed = {e.order_id for e in batch if e.order_id is not None}
        changed -= {e.order_id for e in batch if e.kind in _QUIET_KINDS}
        running = {o.id: o for o in self.monitor.orders}
        if self.ended is not None:
            for event in batch:
                if event.kind in ("expired", "cancelled") and event.order is not None:
                    final = event.order
                    self.ended[final.id] = msgspec.structs.replace(final, expired=True)
        found = sorted(
            [*running.values(), *(self.ended or {}).values()],
            key=lambda o: (o.expired, -float(o.ct)),
        )
        active = {
            oid: flag for oid in running if (flag := self.monitor.spot_active(oid)) is not None
        }
        parts: list[Any] = []
        if found:
            stops = load_stops()
            rows = [_row(o, now, active, stops) for o in found]
            styles = _styles(found, now, active, {c for c in changed if c is not None}, stops)
            parts.append(out.rich_table(COLUMNS, rows, styles=styles))
        else:
            parts.append(Text("No running orders.", style="dim"))
        for event in self.recent:
            style = "bold red" if event.kind in ALERT_KINDS else None
            if event.kind == "ready":
                style = "green"
            parts.append(Text(render_event(event), style=style or ""))
        parts.append(
            Text(
                f"updated {timestamp(self.app.clock.time())}, every {self.interval:g} s; "
                "Ctrl-C to stop",
                style="dim",
            )
        )
        view = Group(*parts)
        if self.live is None:
            from rich.live import Live

            self.live = Live(view, console=out.console(), auto_refresh=False)
            self.live.start(refresh=True)
        else:
            self.live.update(view, refresh=True)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()


@click.command()
@click.argument("order_ids", nargs=-1, required=True, type=Id(), metavar="ORDER...")
@click.option("--issue", metavar="TEXT", help="Report a problem with the server (max 2048 chars).")
@json_option
@pass_app
def cancel(app: AppContext, order_ids: tuple[int, ...], issue: str | None) -> None:
    """Cancel orders (on-demand or spot), optionally reporting an issue with the server."""
    from clore.cli._marketdata import invalidate
    from clore.rentals import cancel_orders

    # Every order is checked before any is cancelled (bad input exits 2, an unknown order
    # 4, an ended one 1): one among them must not leave the others half done.
    done: list[int] = []
    try:
        final = cancel_orders(app.api(), order_ids, issue, cancelled=done)
    except Exception:
        if done:
            app.out.info(f"cancelled before the error: {', '.join(map(str, done))}")
        raise
    now = app.server_time()
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    for oid, ended in final.items():
        results.append(record(ended, now))
        cur = ended.currency or "bitcoin"
        lines.append(
            f"Cancelled order {oid} (server {ended.si}); spent "
            f"{format_amount(float(ended.spend), cur)} {label(cur)}"
        )
    invalidate(app)

    def human() -> None:
        for line in lines:
            app.out.echo(line)

    app.out.result({"cancelled": results}, human)
