"""The CLI's text forms of numbers, one rule each (docs/cli.md, *Output rules*): amounts,
prices, durations, GPUs, timestamps; and the ``--json`` records of servers and orders.

* **Amounts** and **durations** are the library's rules (``clore.market.units``, which
  the loops' event messages use too), re-exported here: ``amount(0.000058, "bitcoin")``
  is ``0.00005800``, ``duration(7333)`` is ``2 h 2 min``.
* **Prices** carry their currency and period: ``0.00005800 BTC/day``.

``server_doc`` and ``order_doc`` build the ``--json`` records: the API's own fields plus a
``derived`` object.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from clore.market import USD, PriceContext, label, server_price
from clore.market.units import MAX_DECIMALS, SIGNIFICANT, amount, duration

if TYPE_CHECKING:
    from clore import Order, Server

__all__ = [
    "MAX_DECIMALS",
    "SIGNIFICANT",
    "amount",
    "day_and_hour",
    "duration",
    "gpu_text",
    "money",
    "order_doc",
    "order_state",
    "price_text",
    "server_doc",
    "timestamp",
]


def money(value: float | None, currency: str, per: str | None = None) -> str:
    """``0.00005800 BTC``, or with ``per`` ``0.00005800 BTC/day``; ``—`` when unknown."""
    if value is None:
        return "—"
    unit = f"{label(currency)}/{per}" if per else label(currency)
    return f"{amount(value, currency)} {unit}"


def price_text(value: float | None, currency: str, *, per: str = "day") -> str:
    """``0.00005800 BTC/day``; ``—`` when unknown."""
    return money(value, currency, per)


def day_and_hour(value: float | None, currency: str) -> str:
    """``0.00005800 BTC/day (0.00000242 BTC/h)``."""
    if value is None:
        return "—"
    return f"{price_text(value, currency)} ({price_text(value / 24, currency, per='h')})"


def timestamp(unix: float) -> str:
    """A unix time as ``2024-05-01 12:00:00 UTC``."""
    return datetime.fromtimestamp(unix, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def gpu_text(server_or_order: Server | Order) -> str:
    """``2× RTX 4090`` from a record's ``specs.gpu``: the count and the exact model name
    ``gpu=`` matches and ``clore gpus`` lists (``RTX 3070 Laptop``, ``A100 SXM4 80GB``)."""
    from clore.market.models import canonical_model

    specs = server_or_order.specs
    if not specs.gpu:
        return "—"
    return f"{specs.gpu_count}× {canonical_model(specs.gpu_model) or specs.gpu_model}"


def number(value: float | None, digits: int = 0, unit: str = "") -> str:
    """A number with a unit, ``—`` when missing."""
    if value is None:
        return "—"
    return f"{float(value):.{digits}f}{unit}"


def server_doc(server: Server, ctx: PriceContext) -> dict[str, Any]:
    """A server for ``--json``: the API record plus ``derived`` prices in ``ctx.currency``."""
    import msgspec

    doc: dict[str, Any] = msgspec.to_builtins(server)
    day = server_price(server, ctx)
    usd = server_price(server, ctx, USD)
    spot = server_price(server, ctx, spot=True)
    doc["derived"] = {
        "available": not server.rented,
        "gpu_count": server.gpu_count,
        "gpu_model": server.gpu_model,
        "currency": ctx.currency,
        "price_per_day": day,
        "price_per_hour": None if day is None else day / 24,
        "usd_per_day": usd,
        "usd_per_hour": None if usd is None else usd / 24,
        "spot_per_day": spot,
        "mrl_seconds": float(server.mrl) * 3600,
    }
    return doc


#: The CLI's documented words for ``Order.state_at``'s states (docs/cli.md, JSON output):
#: a running order is ``ready``, and every ended one ``expired``.
def order_state(order: Order, now: float, spot_active: bool | None = None) -> str:
    """``ready``, ``provisioning``, ``offline``, ``outbid`` (a spot order not currently
    winning), ``expired``, ``cancelled`` or ``budget_stopped``: the order's status in the
    CLI's documented words (``clore.cli._states.state_word``, one rule for every output)."""
    from clore.cli._states import state_word

    return state_word(order, now, spot_active)


def order_doc(order: Order, now: float, spot_active: bool | None = None) -> dict[str, Any]:
    """An order for ``--json``: the API record plus a ``derived`` object (``now`` is the
    server's time: ``AppContext.server_time``)."""
    import msgspec

    doc: dict[str, Any] = msgspec.to_builtins(order)
    doc["derived"] = {
        "state": order_state(order, now, spot_active),
        "ready": order.ready,
        "spot_active": spot_active,
        "price_per_hour": order.price_per_hour,
        "time_left_seconds": order.time_left(now).total_seconds(),
        "expires_at": order.ends_at,
        "ssh_command": order.ssh_command(),
        "http_url": order.http_url,
    }
    return doc
