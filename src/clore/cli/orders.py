"""``clore orders`` (table, ``--watch``) and ``clore cancel ID...`` (``clore order ID`` is
``order_cmd``).

States are ``_states.state_word``: ``Order.state_at`` told apart further by what this
client did (an order its budget guard stopped is ``budget_stopped``, not ``cancelled``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import click

from clore.cli._automation import interval_option
from clore.cli._completion import remember_orders
from clore.cli._context import AppContext, CliError, pass_app
from clore.cli._format import amount, duration, gpu_text, money, timestamp
from clore.cli._orders import Stops, collect, record
from clore.cli._output import Column, Output, json_option, listing_options
from clore.cli._params import Id, Integer
from clore.cli._states import STATE_STYLES, load_stops, state_word
from clore.market import label

if TYPE_CHECKING:
    from clore import Order
    from clore.cli._announce import Announcing
    from clore.workflows import Event, OrderMonitor

__all__ = ["cancel", "orders"]

#: ``--columns`` names of the listing.
COLUMN_NAMES: Final = (
    "id", "server", "gpu", "type", "price", "price_h", "state", "spend", "time_left", "ssh",
)  # fmt: skip


def columns_for(found: list[Order]) -> list[Column]:
    """The listing's columns; the currency goes in the price headers when every order has
    the same one (else in each cell). At 80 columns a terminal keeps id, state, GPU, SSH,
    time left (and the price when it fits); -o wide shows the rest."""
    unit = _common_currency(found)
    tag = f"{label(unit)}/" if unit else "Price/"
    return [
        Column("ID", "right", 100, "id"),
        Column("Server", "right", 50, "server"),
        Column("GPU", "left", 95, "gpu"),
        Column("Type", "left", 60, "type"),
        Column(f"{tag}day", "right", 85, "price"),
        Column(f"{tag}h", "right", 40, "price_h"),
        Column("State", "left", 99, "state"),
        Column(f"Spend {label(unit)}" if unit else "Spend", "right", 70, "spend"),
        Column("Time left", "right", 90, "time_left"),
        Column("SSH", "left", 92, "ssh"),
    ]


def _common_currency(found: list[Order]) -> str | None:
    currencies = {o.currency or "bitcoin" for o in found}
    return currencies.pop() if len(currencies) == 1 else None


def _row(
    order: Order, now: float, active: dict[int, bool], stops: Stops, unit: str | None
) -> list[str]:
    cur = order.currency or "bitcoin"

    def cell(value: float) -> str:
        return amount(value, cur) if unit else money(value, cur)

    state = state_word(order, now, active.get(order.id), stops)
    endpoint = order.ssh_endpoint
    return [
        str(order.id),
        str(order.si),
        gpu_text(order),
        "spot" if order.spot else "on-demand",
        cell(float(order.price)),
        cell(float(order.price) / 24),
        state,
        cell(float(order.spend)),
        "—" if order.expired else duration(order.time_left(now).total_seconds()),
        f"{endpoint[0]}:{endpoint[1]}" if endpoint else "—",
    ]


def _rows(found: list[Order], now: float, active: dict[int, bool], stops: Stops) -> list[list[str]]:
    unit = _common_currency(found)
    return [_row(o, now, active, stops, unit) for o in found]


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
    out: Output,
    found: list[Order],
    now: float,
    active: dict[int, bool],
    stops: Stops,
    include_completed: bool,
) -> None:
    empty = "No orders." if include_completed else "No running orders (--all shows ended ones)."
    out.table(
        columns_for(found),
        _rows(found, now, active, stops),
        styles=_styles(found, now, active, set(), stops),
        empty=empty,
    )


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
@listing_options(*COLUMN_NAMES)
@json_option(help="Print one JSON document on stdout; with --watch, one event per line.")
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
    if watch and app.out.view.quiet:
        raise CliError("-q lists the ids once: not with --watch", 2)
    if watch:
        _watch(app, include_completed, interval, count)
        return
    found, active = collect(app, include_completed)
    remember_orders(app, found)  # cancel/order/ssh <TAB>
    now = app.server_time()
    stops = load_stops()
    app.out.result(
        _document(found, now, active, stops),
        lambda: _render(app.out, found, now, active, stops, include_completed),
    )


def _watch(app: AppContext, include_completed: bool, interval: float, count: int | None) -> None:
    """Run the order monitor and show its events (see ``orders``' help for the three forms)."""
    from clore.cli._automation import run_events
    from clore.workflows import OrderMonitor

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

    try:
        run_events(app, events(), jsonl=out.json_mode, quiet=view is not None)
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
            styles = _styles(found, now, active, {c for c in changed if c is not None}, stops)
            rows = _rows(found, now, active, stops)
            parts.append(out.rich_table(columns_for(found), rows, styles=styles))
        else:
            parts.append(Text("No running orders.", style="dim"))
        for event in self.recent:
            style = "bold red" if event.kind in ALERT_KINDS else None
            if event.kind == "ready":
                style = "green"
            parts.append(Text(render_event(event), style=style or ""))
        parts.append(
            Text(
                f"updated {timestamp(self.app.clock.time())}, every {duration(self.interval)}; "
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


class _ReadOnce:
    """The client ``cancel_orders`` is given: a ``my_orders`` read is kept, and served once
    more when ``replay`` is set (the second pass over the orders still to cancel asks
    nothing again)."""

    def __init__(self, client: Announcing) -> None:
        self.client = client
        self.seen: list[Order] | None = None
        self.replay = False

    def my_orders(self, include_completed: bool = False) -> list[Order]:
        if self.replay and self.seen is not None:
            self.replay = False
            return self.seen
        self.seen = self.client.my_orders(include_completed=include_completed)
        return self.seen

    def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        self.client.cancel_order(order_id, issue)


@click.command()
@click.argument("order_ids", nargs=-1, required=True, type=Id(), metavar="ORDER...")
@click.option("--issue", metavar="TEXT", help="Report a problem with the server (max 2048 chars).")
@json_option
@pass_app
def cancel(app: AppContext, order_ids: tuple[int, ...], issue: str | None) -> None:
    """Cancel orders (on-demand or spot), optionally reporting an issue with the server.

    An order that has already ended is left as it is and said so (exit 0), as the SDK's
    cancel_order leaves it (the API answers a second cancel with success).
    """
    from clore import OrderExpiredError
    from clore.cli._marketdata import invalidate
    from clore.rentals import cancel_orders

    # Every order is checked before any is cancelled (bad input exits 2 before a request,
    # an unknown order 4): one among them must not leave the others half done.
    client = _ReadOnce(app.api())
    unique = list(dict.fromkeys(order_ids))
    done: list[int] = []
    ended: dict[int, Order] = {}
    try:
        try:
            final = cancel_orders(client, unique, issue, cancelled=done)
        except OrderExpiredError:
            known = {o.id: o for o in client.seen or []}
            ended = {oid: known[oid] for oid in unique if oid in known and known[oid].expired}
            live = [oid for oid in unique if oid not in ended]
            client.replay = True
            final = cancel_orders(client, live, issue, cancelled=done) if live else {}
    except Exception:
        if done:
            app.out.info(f"cancelled before the error: {', '.join(map(str, done))}")
        raise
    if final:
        invalidate(app)
    now = app.server_time()
    lines: list[str] = []
    for oid in unique:
        found = final[oid] if oid in final else ended[oid]
        spent = money(float(found.spend), found.currency or "bitcoin")
        if oid in final:
            lines.append(f"Cancelled order {oid} (server {found.si}); spent {spent}")
        else:
            lines.append(
                f"Order {oid} had already ended ({state_word(found, now)}); spent {spent}; "
                "nothing cancelled"
            )
    document = {
        "cancelled": [record(o, now) for o in final.values()],
        "already_ended": [record(o, now) for o in ended.values()],
    }

    def human() -> None:
        for line in lines:
            app.out.echo(line)

    app.out.result(document, human)
