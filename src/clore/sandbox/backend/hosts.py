"""Host side: ``my_servers``, ``server_config``, ``set_server_settings``, and server control.

What a host changes here is what the marketplace shows: visibility, prices, accepted
currencies and ``mrl``. Running orders keep the price they were created with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import UnsetType

from clore._facts import CURRENCIES, MAX_SERVER_NAME, Currency
from clore._wire import SetServerSettingsPerCurrencyRequest, SetServerSettingsRequest
from clore.sandbox.backend.errors import invalid_input
from clore.sandbox.backend.lifecycle import end_order, market_order, rerank
from clore.sandbox.backend.records import ServerRec
from clore.sandbox.backend.repository import Repository
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
    require(0 < len(name) <= MAX_SERVER_NAME, "server_name: bad name")
    server = repo.server_by_name(user_id, name)
    if server is None:
        raise invalid_input("server_name: no such server")
    return server, rental_status(repo, server)


def _number(value: Any, name: str) -> float:
    require(isinstance(value, int | float) and not isinstance(value, bool), f"{name}: not a number")
    return check_price(float(value), name)


def _legacy_price(value: float | Mapping[Currency, float]) -> dict[str, float]:
    """A legacy price: a number (in bitcoin) or {currency: number}."""
    if isinstance(value, Mapping):
        return {currency: float(price) for currency, price in value.items()}
    return {"bitcoin": float(value)}


def _forms(
    body: Mapping[str, Any],
) -> tuple[SetServerSettingsRequest, SetServerSettingsPerCurrencyRequest]:
    # A body may mix the two forms; each Struct reads its own fields and ignores the rest.
    try:
        return (
            msgspec.convert(body, SetServerSettingsRequest),
            msgspec.convert(body, SetServerSettingsPerCurrencyRequest),
        )
    except msgspec.ValidationError as exc:
        raise invalid_input(f"set_server_settings: {exc}") from None


def set_server_settings(
    repo: Repository, now: float, user_id: int, body: Mapping[str, Any]
) -> None:
    """Apply the legacy and the per-currency settings form (``clore._wire``'s two
    ``set_server_settings`` Structs, which hold the limits) to one of the caller's servers."""
    legacy, per_currency = _forms(body)
    server = repo.server_by_name(user_id, legacy.name)
    if server is None:
        raise invalid_input("name: no such server")
    on_demand, spot, coins = dict(server.on_demand), dict(server.spot), list(server.allowed_coins)
    if not isinstance(legacy.availability, UnsetType):
        server.visible = legacy.availability
    if not isinstance(legacy.mrl, UnsetType):
        hours = legacy.mrl
        server.mrl = int(hours) if float(hours).is_integer() else hours
    if not isinstance(legacy.end_outbid, UnsetType):
        server.end_outbid = legacy.end_outbid
    if not isinstance(legacy.on_demand, UnsetType):
        on_demand.update(_legacy_price(legacy.on_demand))
    if not isinstance(legacy.spot, UnsetType):
        spot.update(_legacy_price(legacy.spot))
    for currency, (od_price, spot_price, enabled) in per_currency.by_currency().items():
        if od_price is not None:
            on_demand[currency] = od_price
        if spot_price is not None:
            spot[currency] = spot_price
        if enabled and currency not in coins:
            coins.append(currency)
        elif enabled is False and currency in coins:
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
