"""``clore orders`` (table, ``--watch``), ``clore order ID`` and ``clore cancel ID...``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from clore.cli._context import AppContext, CliError, pass_app
from clore.cli._format import (
    STATE_STYLES,
    day_and_hour,
    duration,
    gpu_text,
    order_doc,
    order_state,
    timestamp,
)
from clore.cli._output import Column, Output, json_option
from clore.market import format_amount, label

if TYPE_CHECKING:
    from clore._wire import Order

__all__ = ["cancel", "collect", "order", "orders"]

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


def collect(app: AppContext, include_completed: bool) -> tuple[list[Order], dict[int, bool]]:
    """Your orders and, for running spot orders, whether each bid is currently winning."""
    from clore._errors import ServerNotFoundError

    client = app.api()
    found = client.my_orders(include_completed=include_completed)
    active: dict[int, bool] = {}
    servers = sorted({o.si for o in found if o.spot and not o.expired})
    for server_id in servers:
        try:
            market = client.spot_marketplace(server_id)
        except ServerNotFoundError:
            continue
        for offer in market.offers:
            active[offer.offer_id] = offer.active
    ordered = sorted(found, key=lambda o: (o.expired, -float(o.ct)))
    return ordered, active


def _row(order: Order, now: float, active: dict[int, bool], note: str = "") -> list[str]:
    cur = order.currency or "bitcoin"
    state = order_state(order, now, active.get(order.id))
    endpoint = order.ssh_endpoint
    return [
        str(order.id),
        str(order.si),
        gpu_text(order),
        "spot" if order.spot else "on-demand",
        f"{format_amount(float(order.price), cur)} {label(cur)}",
        f"{format_amount(float(order.price) / 24, cur)} {label(cur)}",
        state + note,
        f"{format_amount(float(order.spend), cur)} {label(cur)}",
        "—" if order.expired else duration(order.time_left(now).total_seconds()),
        f"{endpoint[0]}:{endpoint[1]}" if endpoint else "—",
    ]


def _render(
    out: Output, found: list[Order], now: float, active: dict[int, bool], notes: dict[int, str]
) -> None:
    rows = [_row(o, now, active, notes.get(o.id, "")) for o in found]
    styles: list[str | None] = []
    for o in found:
        state = order_state(o, now, active.get(o.id))
        styles.append("bold reverse" if o.id in notes else STATE_STYLES.get(state))
    if not rows:
        out.echo("No orders.")
        return
    out.table(COLUMNS, rows, styles=styles)


def _document(found: list[Order], now: float, active: dict[int, bool]) -> dict[str, Any]:
    return {"orders": [order_doc(o, now, active.get(o.id)) for o in found]}


@click.command()
@click.option("--all", "include_completed", is_flag=True, help="Include ended orders.")
@click.option("--watch", is_flag=True, help="Keep refreshing; state changes are highlighted.")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Refresh interval of --watch.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    metavar="N",
    help="With --watch: stop after N refreshes.",
)
@json_option
@pass_app
def orders(
    app: AppContext, include_completed: bool, watch: bool, interval: float, count: int | None
) -> None:
    """List your orders: state, price per day and hour, spend and time left.

    States: provisioning, ready, outbid (spot, not winning), offline, expired.
    """
    if watch:
        _watch(app, include_completed, interval, count)
        return
    found, active = collect(app, include_completed)
    now = app.clock.time()
    app.out.result(_document(found, now, active), lambda: _render(app.out, found, now, active, {}))


def _watch(app: AppContext, include_completed: bool, interval: float, count: int | None) -> None:
    """Poll my_orders; print the table, then each state change (or a live table on a TTY)."""
    out = app.out
    previous: dict[int, str] = {}
    rounds = 0
    live: Any = None
    try:
        while True:
            found, active = collect(app, include_completed)
            now = app.clock.time()
            states = {o.id: order_state(o, now, active.get(o.id)) for o in found}
            notes = {
                oid: f" (was {previous[oid]})"
                for oid, state in states.items()
                if oid in previous and previous[oid] != state
            }
            if out.json_mode:
                import msgspec

                line = msgspec.json.encode({"at": now, **_document(found, now, active)})
                out.stdout.write(line.decode() + "\n")
                out.stdout.flush()
            elif out.tty:
                live = _live_update(app, live, found, now, active, notes)
            elif rounds == 0:
                _render(out, found, now, active, {})
            else:
                for oid, note in notes.items():
                    out.echo(f"{timestamp(now)}  order {oid}: {note[6:-1]} → {states[oid]}")
                for oid in states.keys() - previous.keys():
                    out.echo(f"{timestamp(now)}  order {oid}: new ({states[oid]})")
            previous = states
            rounds += 1
            if count is not None and rounds >= count:
                return
            app.clock.sleep(interval)
    finally:
        if live is not None:
            live.stop()


def _live_update(
    app: AppContext,
    live: Any,
    found: list[Order],
    now: float,
    active: dict[int, bool],
    notes: dict[int, str],
) -> Any:
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    out = app.out
    rows = [_row(o, now, active, notes.get(o.id, "")) for o in found]
    styles = [
        "bold reverse" if o.id in notes else STATE_STYLES.get(order_state(o, now, active.get(o.id)))
        for o in found
    ]
    view = Group(
        out.rich_table(COLUMNS, rows, styles=styles),
        Text(f"refreshed {timestamp(now)}; Ctrl-C to stop", style="dim"),
    )
    if live is None:
        live = Live(view, console=out.console(), auto_refresh=False)
        live.start()
    else:
        live.update(view, refresh=True)
    return live


@click.command()
@click.argument("order_id", type=int, metavar="ORDER")
@json_option
@pass_app
def order(app: AppContext, order_id: int) -> None:
    """Show one order: state, SSH and HTTP endpoints, price, spend and time left."""
    found = _get(app, order_id)
    active: dict[int, bool] = {}
    if found.spot and not found.expired:
        market = app.api().spot_marketplace(found.si)
        active = {offer.offer_id: offer.active for offer in market.offers}
    now = app.clock.time()
    spot_active = active.get(found.id)
    out = app.out

    def human() -> None:
        cur = found.currency or "bitcoin"
        state = order_state(found, now, spot_active)
        pairs = [
            ("State", state),
            ("Server", f"{found.si} ({gpu_text(found)})"),
            ("Type", "spot" if found.spot else "on-demand"),
            ("Price", day_and_hour(float(found.price), cur)),
            ("Spend", f"{format_amount(float(found.spend), cur)} {label(cur)}"),
            ("Creation fee", f"{format_amount(float(found.creation_fee), cur)} {label(cur)}"),
            ("Created", timestamp(float(found.ct))),
            ("Time left", "—" if found.expired else duration(found.time_left(now).total_seconds())),
            ("Image", found.image or "—"),
            ("SSH", _access(found, found.ssh_command())),
            ("HTTP", _access(found, found.http_url)),
        ]
        out.fields(pairs, title=f"Order {found.id}")

    out.result({"order": order_doc(found, now, spot_active)}, human)


def _access(found: Order, value: str | None) -> str:
    if found.expired:
        return "— (ended)"
    return value or "— (not provisioned yet)"


def _get(app: AppContext, order_id: int) -> Order:
    return app.api().get_order(order_id)


@click.command()
@click.argument("order_ids", nargs=-1, required=True, type=int, metavar="ORDER...")
@click.option("--issue", metavar="TEXT", help="Report a problem with the server (max 2048 chars).")
@json_option
@pass_app
def cancel(app: AppContext, order_ids: tuple[int, ...], issue: str | None) -> None:
    """Cancel orders (on-demand or spot), optionally reporting an issue with the server."""
    from clore._validate import validate_cancel_order
    from clore.cli._marketdata import invalidate

    for oid in order_ids:
        validate_cancel_order(oid, issue)  # bad input exits 2 before anything is sent
    client = app.api()
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    for oid in order_ids:
        found = _get(app, oid)
        if found.expired:
            raise CliError(f"order {oid} has already ended", 1)
        client.cancel_order(oid, issue)
        final = client.get_order(oid)
        now = app.clock.time()
        results.append(order_doc(final, now))
        cur = final.currency or "bitcoin"
        lines.append(
            f"Cancelled order {oid} (server {final.si}); spent "
            f"{format_amount(float(final.spend), cur)} {label(cur)}"
        )
    invalidate(app)

    def human() -> None:
        for line in lines:
            app.out.echo(line)

    app.out.result({"cancelled": results}, human)
