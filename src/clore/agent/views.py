"""Compact records of servers and orders for a model: few keys, rounded numbers.

Amounts are rounded to 4 significant digits (``sig``), prices given per hour (the unit a
person compares) with the API's per-day figure beside them where it matters; a model
reads ``6.123e-06`` as well as ``0.000006123``. Text forms use the same numbers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from clore.market import USD, PriceContext, label, server_price
from clore.market.models import canonical_model

if TYPE_CHECKING:
    from clore import Order, Server

__all__ = ["gpu_text", "money", "order_view", "server_view", "sig"]


def sig(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded to ``digits`` significant digits (None stays None)."""
    if value is None:
        return None
    number = float(value)
    if number == 0 or not math.isfinite(number):
        return number if math.isfinite(number) else None
    return round(number, digits - 1 - math.floor(math.log10(abs(number))))


def num(value: float | None, digits: int = 4) -> str:
    """``sig`` as text; ``-`` when unknown."""
    rounded = sig(value, digits)
    return "-" if rounded is None else f"{rounded:.{digits}g}"


def money(value: float | None, currency: str, per: str | None = None) -> str:
    """``6.123e-06 BTC/h``, ``0.42 USD``; ``-`` when unknown."""
    unit = label(currency) + (f"/{per}" if per else "")
    return "-" if value is None else f"{num(value)} {unit}"


def gpu_text(record: Server | Order) -> str:
    """``2x RTX 4090``: the count and the exact model (what ``gpu=`` matches)."""
    specs = record.specs
    if not specs.gpu:
        return "-"
    return f"{specs.gpu_count}x {canonical_model(specs.gpu_model) or specs.gpu_model}"


def server_view(server: Server, ctx: PriceContext) -> dict[str, Any]:
    """One server as a model needs it to choose (prices per hour)."""
    cur = ctx.currency
    day = server_price(server, ctx)
    usd = server_price(server, ctx, USD)
    spot = server.price_per_day(cur, spot=True)
    specs = server.specs
    return {
        "id": server.id,
        "gpu": gpu_text(server),
        "gpuram_gb": sig(float(specs.gpuram)),
        "rented": server.rented,
        "currency": label(cur),
        "price_per_hour": sig(None if day is None else day / 24),
        "price_per_day": sig(day),
        "usd_per_hour": sig(None if usd is None else usd / 24),
        "spot_min_per_hour": sig(None if spot is None else spot / 24),
        "reliability": sig(float(server.reliability), 3),
        "rating": sig(float(server.rating.avg), 2),
        "ratings": server.rating.cnt,
        "country": server.country or None,
        "cuda": server.cuda or None,
        "cpu": specs.cpu or None,
        "cpu_threads": specs.cpu_threads,
        "ram_gb": sig(float(specs.ram), 3),
        "disk_gb": sig(specs.disk_size_gb, 3),
        "net_mbit": [sig(float(specs.net.down), 3), sig(float(specs.net.up), 3)],
        "max_rental_hours": sig(float(server.mrl), 4),
        "currencies": [label(c) for c in server.allowed_coins] or None,
    }


def order_view(
    order: Order, state: str, now: float, *, agent: bool, rates: dict[str, float] | None = None
) -> dict[str, Any]:
    """One order: what it is, its state, what it costs and has cost, how to reach it (no
    secrets: the API never returns passwords or tokens, and none are added)."""
    cur = order.currency or "bitcoin"
    rate = _rate(cur, rates)
    price = float(order.price)
    view: dict[str, Any] = {
        "id": order.id,
        "server_id": order.si,
        "gpu": gpu_text(order),
        "type": "spot" if order.spot else "on-demand",
        "state": state,
        "created_by_agent": agent,
        "currency": label(cur),
        "price_per_hour": sig(price / 24),
        "usd_per_hour": sig(None if rate is None else price * rate / 24),
        "spend": sig(float(order.spend)),
        "spend_usd": sig(None if rate is None else float(order.spend) * rate),
        "created_at": float(order.ct),
        "age_seconds": round(max(0.0, now - float(order.ct))),
        "time_left_seconds": None if order.expired else round(order.time_left(now).total_seconds()),
    }
    if not order.expired:
        view["ssh"] = order.ssh_command()
        view["http_url"] = order.http_url
    return view


def _rate(currency: str, rates: dict[str, float] | None) -> float | None:
    if currency == USD:
        return 1.0
    if not rates:
        return None
    value = rates.get(currency)
    return float(value) if value else None
