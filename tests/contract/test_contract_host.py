"""Contract: the host side — my_servers, server_config, set_server_settings — and what the
marketplace shows after a host changes something."""

from __future__ import annotations

import pytest
from contract_targets import CURRENCY, IMAGE, Target, by_id, cheapest

from clore import (
    Clore,
    CurrencyNotAllowedError,
    InvalidInputError,
    MyServer,
    Server,
    ServerNotFoundError,
    ServerOfflineError,
)


def _hosted(client: Clore) -> tuple[MyServer, Server]:
    """The first server ``client`` hosts, with its marketplace record."""
    mine = client.my_servers()[0]
    assert mine.id is not None
    listed = by_id(client, mine.id)
    assert listed is not None
    return mine, listed


def test_the_demo_user_hosts_three_public_servers(target: Target) -> None:
    """The demo user hosts three servers of one owner, named server-<id>, all listed."""
    client = target.client()
    mine = client.my_servers()
    assert len(mine) == 3
    listed = {s.id: s for s in client.marketplace()}
    assert all(m.id in listed and m.name == f"server-{m.id}" for m in mine)
    assert len({listed[m.id].owner for m in mine if m.id is not None}) == 1
    assert all(m.online and m.connected and m.visibility == "public" for m in mine)
    assert all(m.pricing == listed[m.id].price.on_demand for m in mine if m.id is not None)


def test_server_config_reports_mrl_in_hours(target: Target) -> None:
    """server_config: the marketplace's mrl (hours), its prices, rental status 0 when free."""
    client = target.client()
    mine, listed = _hosted(client)
    config = client.server_config(mine.name)
    assert (config.name, config.id) == (mine.name, mine.id)
    assert config.mrl == listed.mrl and config.max_rental == listed.max_rental
    assert config.pricing == listed.price.on_demand
    assert config.spot_pricing == listed.price.spot
    assert config.rental_status == 0 and config.online


def test_legacy_settings_change_what_the_marketplace_shows(target: Target) -> None:
    """on_demand, spot and mrl (hours) as set are what the marketplace and new orders show."""
    client = target.client()
    mine, _ = _hosted(client)
    assert mine.id is not None
    client.set_server_settings(mine.name, on_demand=0.002, spot=0.001, mrl=48)
    listed = by_id(client, mine.id)
    assert listed is not None and listed.mrl == 48
    assert listed.price_per_day(CURRENCY) == 0.002
    assert listed.price_per_day(CURRENCY, spot=True) == 0.001
    assert client.server_config(mine.name).mrl == 48
    key, _ = target.create_user("renter", {"bitcoin": 1.0})
    order = target.client(key).create_order(mine.id, IMAGE, required_price=0.002)
    assert order.mrl == 48 * 3600 and order.price == 0.002


def test_running_orders_keep_their_price_when_the_host_reprices(target: Target) -> None:
    """A host's new price applies to new orders; a running order keeps the one it got."""
    client = target.client()
    mine, listed = _hosted(client)
    assert mine.id is not None
    key, _ = target.create_user("renter", {"bitcoin": 1.0})
    renter = target.client(key)
    order = renter.create_order(mine.id, IMAGE)
    client.set_server_settings(mine.name, on_demand=0.005)
    assert renter.get_order(order.id).price == listed.price_per_day(CURRENCY)
    assert client.server_config(mine.name).pricing[CURRENCY] == 0.005


def test_per_currency_settings_change_prices_and_accepted_coins(target: Target) -> None:
    """The per-currency form sets a currency's prices and whether orders may pay in it."""
    client = target.client()
    mine, _ = _hosted(client)
    assert mine.id is not None
    client.set_server_settings(
        mine.name, per_currency={"clore": {"on_demand": 900.0, "spot": 450.0, "enabled": True}}
    )
    listed = by_id(client, mine.id)
    assert listed is not None and "CLORE-Blockchain" in listed.allowed_coins
    assert listed.price_per_day("CLORE-Blockchain") == 900.0
    assert listed.price_per_day("CLORE-Blockchain", spot=True) == 450.0
    client.set_server_settings(mine.name, per_currency={"clore": {"enabled": False}})
    listed = by_id(client, mine.id)
    assert listed is not None and "CLORE-Blockchain" not in listed.allowed_coins
    key, _ = target.create_user("renter", {"CLORE-Blockchain": 100000.0})
    with pytest.raises(CurrencyNotAllowedError):
        target.client(key).create_order(mine.id, IMAGE, currency="clore")


def test_a_hidden_server_leaves_the_marketplace(target: Target) -> None:
    """availability=False hides the server from others; its host still sees and lists it."""
    client = target.client()
    mine, _ = _hosted(client)
    assert mine.id is not None
    client.set_server_settings(mine.name, availability=False)
    assert by_id(client, mine.id) is None
    assert client.spot_marketplace(mine.id).server.visibility == "hidden"
    assert [m.visibility for m in client.my_servers() if m.id == mine.id] == ["hidden"]
    key, _ = target.create_user("renter", {"bitcoin": 1.0})
    other = target.client(key)
    with pytest.raises(ServerNotFoundError):
        other.spot_marketplace(mine.id)
    with pytest.raises(ServerOfflineError):
        other.create_order(mine.id, IMAGE)
    client.set_server_settings(mine.name, availability=True)
    assert by_id(client, mine.id) is not None


def test_a_created_host_manages_only_its_own_servers(target: Target) -> None:
    """create_user(servers=...) makes a host: it sees those servers; others get code 2."""
    server = cheapest(target.client())
    key, user_id = target.create_user("host", {}, servers=[server.id])
    host = target.client(key)
    assert [(m.id, m.name) for m in host.my_servers()] == [(server.id, f"server-{server.id}")]
    listed = by_id(host, server.id)
    assert listed is not None and listed.owner == user_id
    host.set_server_settings(f"server-{server.id}", on_demand=0.003)
    listed = by_id(host, server.id)
    assert listed is not None and listed.price_per_day(CURRENCY) == 0.003
    demo = target.client()
    with pytest.raises(InvalidInputError):
        demo.server_config(f"server-{server.id}")
    with pytest.raises(InvalidInputError):
        demo.set_server_settings(f"server-{server.id}", on_demand=0.0001)


def test_rental_status_follows_renters(target: Target) -> None:
    """server_config's rental_status: 2 while rented on demand, 1 with a running spot offer."""
    server = cheapest(target.client(), spot=True)
    key, _ = target.create_user("host", {}, servers=[server.id])
    host = target.client(key)
    name = f"server-{server.id}"
    renter = target.client()
    order = renter.create_order(server.id, IMAGE)
    assert host.server_config(name).rental_status == 2
    renter.cancel_order(order.id)
    spot_bid = 2 * (server.price_per_day(CURRENCY, spot=True) or 0)
    renter.create_order(server.id, IMAGE, order_type="spot", spotprice=spot_bid)
    assert host.server_config(name).rental_status == 1
