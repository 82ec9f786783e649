"""A typed use of the public SDK: ``mypy --strict`` must pass on it as it is, and fail on
each typo ``tests/sdk/test_sdk_typing.py`` writes into a copy of it. Never imported."""

from __future__ import annotations

from clore import AsyncClore, Clore, CurrencyName, Explained, ExplainedRequest, Order, Server


def cheapest(client: Clore, currency: CurrencyName = "usd") -> Server | None:
    """The cheapest available single RTX 4090 under 4 USD a day."""
    found = client.search("gpu=4090 gpus=1 'price<4usd'", currency=currency, limit=1)
    return found[0] if found else None


def rent(client: Clore, server: Server) -> Order:
    """An on-demand rental paid in bitcoin, with a password login."""
    return client.create_order(
        server.id,
        "cloreai/ubuntu22.04-cuda12",
        order_type="on-demand",
        currency="btc",
        ports={"22": "tcp"},
        ssh_password="abc123",
    )


def bid(client: Clore, server: Server) -> Order:
    """A spot bid at the server's minimum, in CLORE."""
    price = server.price_per_day("clore", spot=True) or 1.0
    return client.create_order(
        server.id,
        "cloreai/ubuntu22.04-cuda12",
        order_type="spot",
        currency="clore",
        spotprice=price,
    )


def explain(client: Clore) -> list[ExplainedRequest]:
    """The requests a cancel would make, none sent."""
    seen: list[ExplainedRequest] = []
    client.explain = seen.append
    try:
        client.cancel_order(1)
    except Explained as held:
        seen.append(held.request)
    finally:
        client.explain = None
    return seen


async def search_async(client: AsyncClore) -> list[Server]:
    """The same search, awaited."""
    return await client.search(["gpu=4090", "price<4usd"], currency="usd", sort="-reliability")
