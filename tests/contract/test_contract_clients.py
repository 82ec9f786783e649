"""Contract: the same behaviour through ``AsyncClore`` and the vendor guide's ``CloreClient``."""

from __future__ import annotations

import asyncio

import pytest
from contract_targets import CURRENCY, IMAGE, Target, rentable

from clore import CURRENCIES, CloreAPIError, ServerAlreadyRentedError, ServerNotFoundError


async def test_async_client_rents_waits_and_cancels(target: Target) -> None:
    """AsyncClore: marketplace, create_order, wait_for_order and cancel_order as in Clore."""
    async with target.async_client() as client:
        server = rentable(await client.marketplace())[0]
        order = await client.create_order(server.id, IMAGE)
        assert order.si == server.id and order.mrl == server.mrl * 3600
        ready = await client.wait_for_order(order.id, timeout=120)
        assert ready.ready and ready.ssh_endpoint is not None
        await client.cancel_order(order.id)
        assert (await client.get_order(order.id)).expired
        assert {w.name for w in await client.wallets()} == set(CURRENCIES)


async def test_async_client_rents_exactly_once_despite_a_dropped_answer(target: Target) -> None:
    """AsyncClore.create_order reconciles a dropped answer into the one order it made."""
    async with target.async_client() as client:
        server = rentable(await client.marketplace())[0]
        target.inject_fault("create_order", "drop_after_commit")
        order = await client.create_order(server.id, IMAGE)
        assert [o.id for o in await client.my_orders(include_completed=True)] == [order.id]


async def test_async_client_maps_errors_like_the_sync_one(target: Target) -> None:
    """AsyncClore raises the same exceptions: rented server, unknown spot market."""
    key, _ = target.create_user("bob", {"bitcoin": 1.0})
    async with target.async_client() as client, target.async_client(key) as bob:
        server = rentable(await client.marketplace())[0]
        await client.create_order(server.id, IMAGE)
        with pytest.raises(ServerAlreadyRentedError):
            await bob.create_order(server.id, IMAGE)
        with pytest.raises(ServerNotFoundError):
            await bob.spot_marketplace(server.id + 10_000_000)


def test_compat_client_follows_the_vendor_guide(target: Target) -> None:
    """CloreClient: list_servers, create_order with an id, get_orders, cancel_order as dicts."""
    guide = target.compat_client()
    servers = guide.list_servers()
    assert servers and isinstance(servers[0], dict)
    free = rentable(target.client().marketplace())[0]
    assert guide.get_server_details(free.id)["id"] == free.id
    created = guide.create_order(free.id, IMAGE, currency=CURRENCY, ports={"22": "tcp"})
    assert created["code"] == 0 and created["si"] == free.id and isinstance(created["id"], int)
    assert [o["id"] for o in guide.get_orders()] == [created["id"]]
    assert guide.get_orders()[0]["mrl"] == free.mrl * 3600
    assert guide.cancel_order(created["id"]) == {"code": 0}
    assert guide.get_orders() == []
    done = guide.get_orders(include_completed=True)
    assert [(o["id"], o["expired"]) for o in done] == [(created["id"], True)]
    assert {w["name"] for w in guide.get_wallets()} == set(CURRENCIES)
    assert len(guide.get_my_servers()) == 3


def test_compat_client_raises_clore_api_error(target: Target) -> None:
    """CloreClient failures are CloreAPIError with the API's code and error string."""
    guide = target.compat_client()
    free = rentable(target.client().marketplace())[0]
    guide.create_order(free.id, IMAGE)
    key, _ = target.create_user("bob", {"bitcoin": 1.0})
    with pytest.raises(CloreAPIError) as caught:
        target.compat_client(key).create_order(free.id, IMAGE)
    assert (caught.value.code, caught.value.error) == (6, "server-already-rented")
    with pytest.raises(CloreAPIError) as unauthorized:
        target.compat_client("f" * 32).get_wallets()
    assert unauthorized.value.code == 3


async def test_async_calls_in_parallel_are_paced_not_refused(target: Target) -> None:
    """Concurrent AsyncClore calls on one key all succeed (paced, never rate limited)."""
    async with target.async_client() as client:
        wallets, orders, fees, servers = await asyncio.gather(
            client.wallets(), client.my_orders(), client.renter_fees(), client.my_servers()
        )
        assert len(wallets) == 3 and orders == [] and fees.renter_fees and len(servers) == 3


async def test_async_create_orders_in_parallel_each_return_their_own(target: Target) -> None:
    """Two concurrent create_order calls, one answer dropped: each returns its own order."""
    async with target.async_client() as client:
        first, second = rentable(await client.marketplace())[:2]
        target.inject_fault("create_order", "drop_after_commit")
        a, b = await asyncio.gather(
            client.create_order(first.id, IMAGE), client.create_order(second.id, IMAGE)
        )
        assert (a.si, b.si) == (first.id, second.id)
        assert sorted(o.id for o in await client.my_orders()) == sorted([a.id, b.id])
