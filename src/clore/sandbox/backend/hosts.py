"""Host side: ``my_servers``, ``server_config``, ``set_server_settings``, and server control.

What a host changes here is what the marketplace shows: visibility, prices, accepted
currencies and ``mrl``. Running orders keep the price they were created with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clore.sandbox.backend.errors import invalid_input
from clore.sandbox.backend.lifecycle import end_order, market_order, rerank
from clore.sandbox.backend.records import ServerRec
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import CURRENCIES, MAX_MRL_HOURS
from clore.sandbox.backend.validate import check_price, require

__all__ = [
    "apply_prices",
    "my_servers",
    "rental_status",
    "server_config",
    "set_rented",
    "set_server_settings",
]


def my_servers(repo: Repository, user_id: int) -> list[ServerRec]:
    """The caller's servers in marketplace order."""
    return repo.servers_of(user_id)


def rental_status(repo: Repository, server: ServerRec) -> int:
    """0 free, 1 rented on spot, 2 rented on demand."""
    if server.rented:
        return 2
    return 1 if any(o.spot and o.active for o in repo.live_orders_on(server.id)) else 0


def server_config(repo: Repository, user_id: int, name: str) -> tuple[ServerRec, int]:
    """The caller's server named ``name`` and its rental status; code 2 when not theirs."""
    require(0 < len(name) <= 256, "server_name: bad name")
    server = repo.server_by_name(user_id, name)
    if server is None:
        raise invalid_input("server_name: no such server")
    return server, rental_status(repo, server)


def _number(value: Any, name: str) -> float:
    require(isinstance(value, int | float) and not isinstance(value, bool), f"{name}: not a number")
    return check_price(float(value), name)


def _flag(value: Any, name: str) -> bool:
    require(isinstance(value, bool), f"{name}: not a boolean")
    return bool(value)


def _price_table(value: Any, name: str) -> dict[str, float]:
    """A legacy price: a number (bitcoin) or {currency: number}."""
    if isinstance(value, dict):
        table: dict[str, float] = {}
        for currency, amount in value.items():
            require(currency in CURRENCIES, f"{name}: unknown currency {currency!r}")
            table[currency] = _number(amount, f"{name}.{currency}")
        return table
    return {"bitcoin": _number(value, name)}


def set_server_settings(
    repo: Repository, now: float, user_id: int, body: Mapping[str, Any]
) -> None:
    """Apply the legacy or the per-currency settings form to one of the caller's servers."""
    name = body.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 256:
        raise invalid_input("name: required string")
    server = repo.server_by_name(user_id, name)
    if server is None:
        raise invalid_input("name: no such server")
    on_demand, spot, coins = dict(server.on_demand), dict(server.spot), list(server.allowed_coins)
    if "availability" in body:
        server.visible = _flag(body["availability"], "availability")
    if "mrl" in body:
        hours = _number(body["mrl"], "mrl")
        require(hours <= MAX_MRL_HOURS, "mrl: too long")
        server.mrl = int(hours) if float(hours).is_integer() else hours
    if "end_outbid" in body:
        server.end_outbid = _flag(body["end_outbid"], "end_outbid")
    if "on_demand" in body:
        on_demand.update(_price_table(body["on_demand"], "on_demand"))
    if "spot" in body:
        spot.update(_price_table(body["spot"], "spot"))
    for currency in CURRENCIES:
        if f"{currency}_on_demand" in body:
            on_demand[currency] = _number(body[f"{currency}_on_demand"], f"{currency}_on_demand")
        if f"{currency}_spot" in body:
            spot[currency] = _number(body[f"{currency}_spot"], f"{currency}_spot")
        key = f"enabled-{currency}"
        if key in body:
            enabled = _flag(body[key], key)
            if enabled and currency not in coins:
                coins.append(currency)
            elif not enabled and currency in coins:
                coins.remove(currency)
    server.on_demand, server.spot = on_demand, spot
    server.allowed_coins = [c for c in CURRENCIES if c in coins]
    repo.update_server(server)
    rerank(repo, server, now)


def apply_prices(server: ServerRec, price: Mapping[str, Any]) -> None:
    """Merge a marketplace-shaped ``{"on_demand": {...}, "spot": {...}}`` into ``server``.

    The marketplace's derived ``usd`` and ``original_usd`` tables are ignored; any other key
    (a flat ``{"bitcoin": ...}``, say) is code 2 rather than a silent no-op.
    """
    unknown = sorted(set(price) - {"on_demand", "spot", "usd", "original_usd"})
    require(not unknown, f"price: expected on_demand and/or spot tables, got {unknown}")
    for kind in ("on_demand", "spot"):
        if kind in price:
            table = price[kind]
            require(isinstance(table, dict), f"price.{kind}: not an object")
            current = server.on_demand if kind == "on_demand" else server.spot
            merged = dict(current)
            for currency, amount in table.items():
                require(currency in CURRENCIES, f"price.{kind}: unknown currency {currency!r}")
                merged[currency] = _number(amount, f"price.{kind}.{currency}")
            if kind == "on_demand":
                server.on_demand = merged
            else:
                server.spot = merged


def set_rented(
    repo: Repository, now: float, server: ServerRec, rented: bool, *, duration: float | None = None
) -> None:
    """Let another renter take the server on demand (for ``duration`` seconds, else its full
    ``mrl``), or end whatever order holds it on demand."""
    holders = [o for o in repo.live_orders_on(server.id) if not o.spot]
    if not rented:
        for order in holders:
            end_order(repo, order, now, "released")
        return
    if holders:
        return
    currency = next((c for c in server.allowed_coins if c in server.on_demand), None)
    currency = currency or next(iter(server.on_demand), "bitcoin")
    price = float(server.on_demand.get(currency, 0.0)) or 1e-8
    length = duration if duration is not None else float(server.mrl) * 3600.0
    order = market_order(
        server,
        spot=False,
        currency=currency,
        price=price,
        ct=now,
        end_at=now + length,
        billed_until=now,
    )
    repo.insert_order(order)
    rerank(repo, server, now)
