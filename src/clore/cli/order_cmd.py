"""``clore order ID``: one order's state, endpoints, price, spend and time left; ``--wait``
resumes waiting for it (an interrupted ``rent --wait``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clore.cli._automation import seconds_option
from clore.cli._context import AppContext, pass_app
from clore.cli._format import day_and_hour, duration, gpu_text, timestamp
from clore.cli._orders import record
from clore.cli._output import json_option
from clore.cli._params import Id
from clore.cli._states import state_word
from clore.market import format_amount, label

if TYPE_CHECKING:
    from clore import Order

__all__ = ["order", "wait_for"]


@click.command()
@click.argument("order_id", type=Id(), metavar="ORDER")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait until ORDER is ready (SSH answers) first: resumes an interrupted `rent --wait`.",
)
@seconds_option("--timeout", 600.0, "How long --wait waits.")
@json_option
@pass_app
def order(app: AppContext, order_id: int, wait: bool, timeout: float) -> None:
    """Show one order: state, SSH and HTTP endpoints, price, spend and time left."""
    found = wait_for(app, order_id, timeout) if wait else _get(app, order_id)
    active: dict[int, bool] = {}
    if found.spot and not found.expired:
        market = app.api().spot_marketplace(found.si)
        active = {offer.offer_id: offer.active for offer in market.offers}
    now = app.server_time()
    spot_active = active.get(found.id)
    out = app.out

    def human() -> None:
        cur = found.currency or "bitcoin"
        state = state_word(found, now, spot_active)
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

    out.result({"order": record(found, now, spot_active)}, human)


def wait_for(app: AppContext, order_id: int, timeout: float) -> Order:
    """Wait (``wait_for_order``) until the order is ready; an interrupted or timed-out
    wait says the order is still running and billing, and how to stop or wait again."""
    import time

    from clore.cli._billing import billing_error

    started = time.monotonic()
    try:
        with app.out.waiting(f"waiting for order {order_id} to be ready"):
            found = app.api().wait_for_order(order_id, timeout=timeout)
    except BaseException as exc:
        raise billing_error(exc, order_id) from exc
    app.out.info(f"Order {order_id} is ready after {time.monotonic() - started:.1f} s")
    return found


def _access(found: Order, value: str | None) -> str:
    if found.expired:
        return "— (ended)"
    return value or "— (not provisioned yet)"


def _get(app: AppContext, order_id: int) -> Order:
    return app.api().get_order(order_id)
