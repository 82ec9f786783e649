"""Contract: renting on demand and on spot, provisioning, cancelling, expiry and billing."""

from __future__ import annotations

import socket

import pytest
from contract_targets import CURRENCY, IMAGE, Target, cheapest, is_rented

from clore import (
    ExceededMaxStepError,
    InvalidInputError,
    Order,
    OrderExpiredError,
    OrderNotFoundError,
    SpotPriceLoweringTooSoonError,
    TooLowPriceError,
)


def test_create_order_returns_the_new_order_with_its_id(target: Target) -> None:
    """create_order returns the Order it made: id, server, price, mrl in seconds, no hosts yet."""
    client = target.client()
    server = cheapest(client)
    order = client.create_order(server.id, IMAGE)
    assert isinstance(order, Order) and order.id > 0
    assert (order.si, order.currency, order.image) == (server.id, CURRENCY, IMAGE)
    assert not order.spot
    assert order.price == server.price_per_day(CURRENCY)
    assert order.mrl == server.mrl * 3600 and order.max_rental == server.max_rental
    assert order.ct == int(order.ct) and not order.expired
    assert order.pub_cluster == [] and order.tcp_ports == [] and not order.ready
    assert [o.id for o in client.my_orders()] == [order.id]
    assert client.get_order(order.id).id == order.id
    assert is_rented(client, server.id)


def _first_line(host: str, port: int) -> bytes:
    """What the server at host:port says first (its SSH banner), read over a real socket."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.settimeout(10)
        return sock.recv(256)


def test_wait_for_order_returns_the_order_once_provisioned(target: Target) -> None:
    """wait_for_order polls until pub_cluster, tcp_ports (lists) and the http proxy appear
    and the order's SSH port answers with an SSH banner."""
    client = target.client()
    order = client.create_order(cheapest(client).id, IMAGE, ports={22: "tcp", 8888: "http"})
    ready = client.wait_for_order(order.id, timeout=120, poll_interval=2)
    assert ready.id == order.id and ready.ready
    assert isinstance(ready.pub_cluster, list) and isinstance(ready.tcp_ports, list)
    assert ready.hosts and all(":" in entry for entry in ready.tcp_ports) and 22 in ready.port_map
    host, port = ready.ssh_endpoint or ("", 0)
    assert ready.ssh_command() == f"ssh root@{host} -p {port}"
    assert _first_line(host, port).startswith(b"SSH-2.0-")
    assert str(ready.http_port) == "8888"
    assert ready.http_url is not None and ready.http_url.endswith(f"://{ready.http_pub}")


def test_an_order_without_ports_gets_ssh(target: Target) -> None:
    """Without ports the order maps 22/tcp, so it has an SSH endpoint once ready."""
    client = target.client()
    order = client.create_order(cheapest(client).id, IMAGE)
    target.advance(15)
    ready = client.wait_for_order(order.id, timeout=30)
    assert list(ready.port_map) == [22] and ready.http_pub is None


def test_an_http_only_order_becomes_ready(target: Target) -> None:
    """An order forwarding only an http port is ready once its host and HTTP proxy exist."""
    client = target.client()
    order = client.create_order(cheapest(client).id, IMAGE, ports={8888: "http"})
    assert not order.ready
    ready = client.wait_for_order(order.id, timeout=120)
    assert ready.ready and ready.hosts and ready.tcp_ports == []
    assert ready.http_url is not None and ready.ssh_endpoint is None


def test_cancel_order_ends_the_order_as_expired(target: Target) -> None:
    """After cancel_order the order is listed only with completed ones, as expired."""
    client = target.client()
    server = cheapest(client)
    order = client.create_order(server.id, IMAGE)
    client.cancel_order(order.id, issue="contract test")
    assert client.my_orders() == []
    done = [o for o in client.my_orders(include_completed=True) if o.id == order.id]
    assert len(done) == 1 and done[0].expired
    assert client.get_order(order.id).expired
    with pytest.raises(OrderExpiredError):
        client.wait_for_order(order.id, timeout=10)
    client.cancel_order(order.id)  # ending an ended order changes nothing
    assert not is_rented(client, server.id)


def test_an_order_ends_at_ct_plus_mrl(target: Target) -> None:
    """An order runs until ct + mrl (seconds), then it is expired and its server free."""
    client = target.client()
    server = cheapest(client)
    order = client.create_order(server.id, IMAGE)
    target.advance(float(order.mrl) - 60)
    assert not client.get_order(order.id).expired
    target.advance(120)
    assert client.get_order(order.id).expired
    assert client.my_orders() == []


def test_billing_lowers_the_wallet_by_spend_fee_and_creation_fee(target: Target) -> None:
    """After an hour: spend = price x hours / 24, the wallet down by creation fee + spend x 1.1."""
    client = target.client()
    server = cheapest(client)
    before = {w.name: w.balance for w in client.wallets()}[CURRENCY] or 0.0
    order = client.create_order(server.id, IMAGE)
    target.advance(3600)
    spend = float(client.get_order(order.id).spend)
    after = {w.name: w.balance for w in client.wallets()}[CURRENCY] or 0.0
    assert spend == pytest.approx(float(order.price) / 24, rel=0.02)
    assert before - after == pytest.approx(float(order.creation_fee) + spend * 1.1, rel=0.02)
    target.advance(3600)
    later = {w.name: w.balance for w in client.wallets()}[CURRENCY] or 0.0
    assert later < after


def test_get_order_of_an_unknown_id_raises_order_not_found(target: Target) -> None:
    """get_order of an id that is not among the caller's orders: OrderNotFoundError."""
    with pytest.raises(OrderNotFoundError) as caught:
        target.client().get_order(987654321)
    assert caught.value.order_id == 987654321


def test_a_spot_order_is_an_offer_on_the_spot_market(target: Target) -> None:
    """A spot order bids its price; spot_marketplace lists it active and mine, to me only."""
    client = target.client()
    server = cheapest(client, spot=True)
    bid = 2 * (server.price_per_day(CURRENCY, spot=True) or 0)
    order = client.create_order(server.id, IMAGE, order_type="spot", spotprice=bid)
    assert order.spot and order.price == pytest.approx(bid)
    offers = client.spot_marketplace(server.id).offers
    assert [(o.offer_id, o.active, o.my) for o in offers] == [(order.id, True, True)]
    assert offers[0].bid == pytest.approx(bid) and offers[0].currency == CURRENCY
    key, _ = target.create_user("bob", {"bitcoin": 1.0})
    assert [o.my for o in target.client(key).spot_marketplace(server.id).offers] == [False]


def test_raising_a_spot_bid_takes_effect_at_once(target: Target) -> None:
    """set_spot_price above the bid changes the order's price immediately."""
    client = target.client()
    server = cheapest(client, spot=True)
    bid = 2 * (server.price_per_day(CURRENCY, spot=True) or 0)
    order = client.create_order(server.id, IMAGE, order_type="spot", spotprice=bid)
    client.set_spot_price(order.id, bid * 1.5)
    assert client.get_order(order.id).price == pytest.approx(bid * 1.5)


def test_a_spot_bid_below_the_minimum_is_too_low(target: Target) -> None:
    """Bidding, or lowering a bid, below the server's spot minimum: TooLowPriceError."""
    client = target.client()
    server = cheapest(client, spot=True)
    minimum = server.price_per_day(CURRENCY, spot=True) or 0
    with pytest.raises(TooLowPriceError):
        client.create_order(server.id, IMAGE, order_type="spot", spotprice=minimum / 2)
    assert client.my_orders() == []
    order = client.create_order(server.id, IMAGE, order_type="spot", spotprice=minimum * 1.05)
    with pytest.raises(TooLowPriceError):
        client.set_spot_price(order.id, minimum * 0.99)


def test_lowering_a_bid_by_more_than_max_step_is_refused(target: Target) -> None:
    """A lowering larger than 10% of the bid: ExceededMaxStepError carrying max_step."""
    client = target.client()
    server = cheapest(client, spot=True)
    bid = 4 * (server.price_per_day(CURRENCY, spot=True) or 0)
    order = client.create_order(server.id, IMAGE, order_type="spot", spotprice=bid)
    with pytest.raises(ExceededMaxStepError) as caught:
        client.set_spot_price(order.id, bid * 0.7)
    assert caught.value.max_step == pytest.approx(round(bid * 0.1, 8))
    assert client.get_order(order.id).price == pytest.approx(bid)


def test_a_bid_may_be_lowered_once_per_600_seconds(target: Target) -> None:
    """The first lowering goes through; a second within 600 s is refused locally or by the API."""
    client = target.client()
    server = cheapest(client, spot=True)
    bid = 4 * (server.price_per_day(CURRENCY, spot=True) or 0)
    order = client.create_order(server.id, IMAGE, order_type="spot", spotprice=bid)
    client.set_spot_price(order.id, bid * 0.95)
    assert client.get_order(order.id).price == pytest.approx(bid * 0.95)
    with pytest.raises(SpotPriceLoweringTooSoonError) as local:
        client.set_spot_price(order.id, bid * 0.9)
    assert local.value.local and 0 < (local.value.time_to_lowering or 0) <= 600
    fresh = target.client()  # knows nothing of the first lowering: the API refuses
    with pytest.raises(SpotPriceLoweringTooSoonError) as remote:
        fresh.set_spot_price(order.id, bid * 0.9)
    assert not remote.value.local and 0 < (remote.value.time_to_lowering or 0) <= 600
    target.advance(601)
    client.set_spot_price(order.id, bid * 0.9)
    assert client.get_order(order.id).price == pytest.approx(bid * 0.9)


def test_spot_price_of_another_users_order_is_invalid_input(target: Target) -> None:
    """set_spot_price and cancel_order on someone else's order: code 2, nothing changes."""
    client = target.client()
    server = cheapest(client, spot=True)
    bid = 2 * (server.price_per_day(CURRENCY, spot=True) or 0)
    order = client.create_order(server.id, IMAGE, order_type="spot", spotprice=bid)
    key, _ = target.create_user("mallory", {"bitcoin": 1.0})
    other = target.client(key)
    with pytest.raises(InvalidInputError):
        other.set_spot_price(order.id, bid * 2)
    with pytest.raises(InvalidInputError):
        other.cancel_order(order.id)
    with pytest.raises(OrderNotFoundError):
        other.get_order(order.id)
    current = client.get_order(order.id)
    assert current.price == pytest.approx(bid) and not current.expired
