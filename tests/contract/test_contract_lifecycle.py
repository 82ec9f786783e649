"""Contract: what happens to running orders over time — outbidding, preemption, offline
servers and wallets running dry."""

from __future__ import annotations

import pytest
from contract_targets import CURRENCY, IMAGE, Target, cheapest

from clore import Clore, InvalidInputError, WaitTimeoutError


def _offers(client: Clore, server_id: int) -> list[tuple[int, bool]]:
    return [(o.offer_id, o.active) for o in client.spot_marketplace(server_id).offers]


def test_a_higher_bid_wins_and_the_outbid_offer_waits(target: Target) -> None:
    """The highest bid is active and listed first; the outbid offer waits and can win back."""
    client = target.client()
    server = cheapest(client, spot=True)
    minimum = server.price_per_day(CURRENCY, spot=True) or 0
    mine = client.create_order(server.id, IMAGE, order_type="spot", spotprice=2 * minimum)
    key, _ = target.create_user("bob", {"bitcoin": 1.0})
    bob = target.client(key)
    theirs = bob.create_order(server.id, IMAGE, order_type="spot", spotprice=3 * minimum)
    assert _offers(client, server.id) == [(theirs.id, True), (mine.id, False)]
    client.set_spot_price(mine.id, 4 * minimum)
    assert _offers(client, server.id) == [(mine.id, True), (theirs.id, False)]
    assert not bob.get_order(theirs.id).expired


def test_an_on_demand_order_preempts_spot_which_then_resumes(target: Target) -> None:
    """On-demand takes the server from the spot offer, which stops paying and resumes after."""
    client = target.client()
    server = cheapest(client, spot=True)
    minimum = server.price_per_day(CURRENCY, spot=True) or 0
    offer = client.create_order(server.id, IMAGE, order_type="spot", spotprice=2 * minimum)
    target.advance(3600)
    key, _ = target.create_user("bob", {"bitcoin": 1.0})
    bob = target.client(key)
    rental = bob.create_order(server.id, IMAGE)
    assert _offers(client, server.id) == [(offer.id, False)]
    paused_spend = float(client.get_order(offer.id).spend)
    target.advance(3600)
    assert float(client.get_order(offer.id).spend) == pytest.approx(paused_spend, rel=1e-3)
    bob.cancel_order(rental.id)
    assert _offers(client, server.id) == [(offer.id, True)]
    target.advance(3600)
    assert float(client.get_order(offer.id).spend) > paused_spend * 1.5


def test_an_offline_server_pauses_billing(target: Target) -> None:
    """While its server is offline an order shows online false and does not bill."""
    client = target.client()
    server = cheapest(client)
    order = client.create_order(server.id, IMAGE)
    target.advance(3600)
    target.set_server(server.id, online=False)
    paused = client.get_order(order.id)
    assert not paused.online and not paused.expired
    target.advance(3600)
    assert float(client.get_order(order.id).spend) == pytest.approx(float(paused.spend), rel=1e-3)
    target.set_server(server.id, online=True)
    assert client.get_order(order.id).online


def test_an_order_ends_when_its_wallet_runs_dry(target: Target) -> None:
    """A wallet funding about two hours: the order ends then and the balance shows 0."""
    probe = target.client()
    server = cheapest(probe)
    fees = probe.renter_fees()
    price = server.price_per_day(CURRENCY) or 0
    hourly = price / 24 * (1 + fees.fee_percent("on-demand", CURRENCY) / 100)
    creation = fees.creation_fee("on-demand", CURRENCY)
    key, _ = target.create_user("thrifty", {CURRENCY: creation + 2 * hourly})
    client = target.client(key)
    order = client.create_order(server.id, IMAGE)
    assert order.creation_fee == pytest.approx(creation)
    target.advance(3600)
    assert not client.get_order(order.id).expired
    target.advance(2 * 3600)
    assert client.get_order(order.id).expired
    assert {w.name: w.balance for w in client.wallets()}[CURRENCY] == 0
    assert float(client.get_order(order.id).spend) == pytest.approx(price / 12, rel=0.02)


def test_waiting_for_an_outbid_offer_times_out(target: Target) -> None:
    """An offer that never runs is never provisioned: wait_for_order raises WaitTimeoutError."""
    client = target.client()
    server = cheapest(client, spot=True)
    minimum = server.price_per_day(CURRENCY, spot=True) or 0
    key, _ = target.create_user("bob", {"bitcoin": 1.0})
    target.client(key).create_order(server.id, IMAGE, order_type="spot", spotprice=3 * minimum)
    mine = client.create_order(server.id, IMAGE, order_type="spot", spotprice=2 * minimum)
    with pytest.raises(WaitTimeoutError):
        client.wait_for_order(mine.id, timeout=60, poll_interval=5)
    assert client.get_order(mine.id).pub_cluster == []


def test_cancelling_the_winning_offer_lets_the_next_one_run(target: Target) -> None:
    """When the active offer ends, the next highest becomes active and is provisioned."""
    client = target.client()
    server = cheapest(client, spot=True)
    minimum = server.price_per_day(CURRENCY, spot=True) or 0
    key, _ = target.create_user("bob", {"bitcoin": 1.0})
    bob = target.client(key)
    theirs = bob.create_order(server.id, IMAGE, order_type="spot", spotprice=3 * minimum)
    mine = client.create_order(server.id, IMAGE, order_type="spot", spotprice=2 * minimum)
    bob.cancel_order(theirs.id)
    assert _offers(client, server.id) == [(mine.id, True)]
    assert client.wait_for_order(mine.id, timeout=60).ready
    with pytest.raises(InvalidInputError):
        bob.set_spot_price(theirs.id, 4 * minimum)  # no longer a live offer


def test_a_cancelled_order_stops_billing(target: Target) -> None:
    """After cancel_order the wallet stops falling and spend stays where it was."""
    client = target.client()
    order = client.create_order(cheapest(client).id, IMAGE)
    target.advance(3600)
    client.cancel_order(order.id)
    spend = float(client.get_order(order.id).spend)
    balance = {w.name: w.balance for w in client.wallets()}[CURRENCY]
    target.advance(3 * 3600)
    assert float(client.get_order(order.id).spend) == spend
    assert {w.name: w.balance for w in client.wallets()}[CURRENCY] == balance


def test_a_spot_offer_pays_its_own_bid(target: Target) -> None:
    """A running spot offer's spend grows at its bid per day, raised bids from the raise on."""
    client = target.client()
    server = cheapest(client, spot=True)
    bid = 2 * (server.price_per_day(CURRENCY, spot=True) or 0)
    order = client.create_order(server.id, IMAGE, order_type="spot", spotprice=bid)
    target.advance(6 * 3600)
    first = float(client.get_order(order.id).spend)
    assert first == pytest.approx(bid / 4, rel=0.01)
    client.set_spot_price(order.id, 2 * bid)
    target.advance(6 * 3600)
    assert float(client.get_order(order.id).spend) - first == pytest.approx(bid / 2, rel=0.01)
