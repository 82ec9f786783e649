"""Renting: ``create_order``, ``cancel_order`` and ``my_orders``."""

from __future__ import annotations

import math

from clore._facts import (
    CURRENCY_NOT_ALLOWED,
    NOT_ENOUGH_BALANCE,
    PRICE_CHANGED,
    SERVER_ALREADY_RENTED,
    SERVER_OFFLINE,
    TOO_LOW_PRICE,
)
from clore._wire import CancelOrderRequest, CreateOrderRequest
from clore.sandbox.backend.billing import lazy_balance, lazy_spend
from clore.sandbox.backend.errors import Conflict, application_error, invalid_input
from clore.sandbox.backend.lifecycle import end_order, rerank
from clore.sandbox.backend.records import OrderRec, OrderView
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import CREATION_FEES, DAY, FUNDED_SECONDS, fee_rate
from clore.sandbox.backend.validate import (
    check_env,
    check_id,
    check_ports,
    check_price,
    check_request,
    check_ssh_password,
    require,
)

__all__ = ["cancel_order", "create_order", "my_orders", "own_live_order"]


def _same_price(expected: float, actual: float) -> bool:
    return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)


def _validate(req: CreateOrderRequest) -> tuple[bool, dict[str, str], dict[str, object]]:
    """Check every field of a create_order body; returns (spot, ports, stored extras)."""
    check_request(req, "create_order")  # ids, currency, type, lengths: the Struct's limits
    spot = req.type == "spot"
    require(not req.image.isspace(), "image: bad image name")
    if spot:
        require(req.spotprice is not None, "spotprice: required for spot orders")
    if req.spotprice is not None:
        check_price(req.spotprice, "spotprice")
    if req.required_price is not None:
        check_price(req.required_price, "required_price")
    ports = check_ports(req.ports)
    env = check_env(req.env)
    check_ssh_password(req.ssh_password)
    # Secrets (passwords, keys, tokens, registry auth) are checked but never stored.
    extras: dict[str, object] = {"env": env}
    if req.command is not None:
        extras["command"] = req.command
    if req.autossh_entrypoint is not None:
        extras["autossh_entrypoint"] = req.autossh_entrypoint
    return spot, ports, extras


def create_order(repo: Repository, now: float, user_id: int, req: CreateOrderRequest) -> int:
    """Rent a server on demand or place a spot offer; returns the new order's id."""
    spot, ports, extras = _validate(req)
    server = repo.get_server(req.renting_server)
    if server is None:
        raise invalid_input("renting_server: no such server")
    if not server.listed:
        raise application_error(SERVER_OFFLINE)
    if server.allowed_coins and req.currency not in server.allowed_coins:
        raise application_error(CURRENCY_NOT_ALLOWED)
    table = server.spot if spot else server.on_demand
    listed_price = table.get(req.currency)
    if listed_price is None:
        raise application_error(CURRENCY_NOT_ALLOWED)
    if req.required_price is not None and not _same_price(req.required_price, listed_price):
        raise application_error(PRICE_CHANGED)
    price = float(listed_price)
    if spot and req.spotprice is not None:
        price = float(req.spotprice)
        if price < listed_price and not _same_price(price, listed_price):
            raise application_error(TOO_LOW_PRICE)
    elif server.rented:
        raise application_error(SERVER_ALREADY_RENTED)
    kind = "spot" if spot else "on_demand"
    creation_fee = CREATION_FEES[kind][req.currency]
    rate = fee_rate(spot)
    wallet = repo.get_wallet(user_id, req.currency)
    needed = creation_fee + price * (1.0 + rate) * FUNDED_SECONDS / DAY
    if wallet is None:
        raise application_error(NOT_ENOUGH_BALANCE)
    live = [o for o in repo.orders_of(user_id, include_ended=False) if o.billing]
    if lazy_balance(wallet, live, now) < needed:
        raise application_error(NOT_ENOUGH_BALANCE)
    # The creation fee is taken once the order has run 10 minutes (settle), never here.
    mrl = float(server.mrl) * 3600.0
    # The API reports ct in whole seconds and an order ends at exactly ct + mrl.
    ct = float(math.floor(now))
    order = OrderRec(
        id=0,
        user_id=user_id,
        server_id=server.id,
        spot=spot,
        currency=req.currency,
        price=price,
        fee_rate=rate,
        image=req.image,
        ct=ct,
        mrl=mrl,
        end_at=ct + mrl,
        creation_fee=creation_fee,
        billed_until=now,
        ports=ports,
        extra=extras,
    )
    try:
        repo.insert_order(order)
    except Conflict:
        # The store's own uniqueness rule on running on-demand orders: a race was lost.
        raise application_error(SERVER_ALREADY_RENTED) from None
    rerank(repo, server, now)
    return order.id


def own_live_order(repo: Repository, user_id: int, order_id: int, name: str) -> OrderRec | None:
    """The caller's order ``order_id`` (None when it has ended); code 2 when not theirs."""
    check_id(order_id, name)
    order = repo.get_order(order_id)
    if order is None or order.user_id != user_id:
        # Another user's order id gets the same answer as an unknown one: no data leaks.
        raise invalid_input(f"{name}: no such order")
    return None if order.ended else order


def cancel_order(repo: Repository, now: float, user_id: int, req: CancelOrderRequest) -> None:
    """End one of the caller's orders, recording ``issue``; cancelling twice is a no-op."""
    check_request(req, "cancel_order")  # the id's range, the issue's length
    order = own_live_order(repo, user_id, req.id, "id")
    if order is not None:
        end_order(repo, order, now, "cancelled", issue=req.issue)


def my_orders(
    repo: Repository, now: float, user_id: int, *, include_completed: bool
) -> list[OrderView]:
    """The caller's orders at ``now`` (live ones, or all with ``include_completed``)."""
    return [
        OrderView(
            order=order,
            server=server,
            spend=lazy_spend(order, now),
            online=server.online and not order.ended,
        )
        for order, server in repo.orders_with_servers(user_id, include_ended=include_completed)
    ]
