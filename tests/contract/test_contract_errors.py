"""Contract: every refusal the API can give reaches the caller as its own exception."""

from __future__ import annotations

from typing import Any

import pytest
from contract_targets import CURRENCY, IMAGE, Target, by_id, cheapest, is_rented, rentable

from clore import (
    AuthenticationError,
    CurrencyNotAllowedError,
    InvalidInputError,
    NotEnoughBalanceError,
    OrderNotFoundError,
    ParameterError,
    PriceChangedError,
    ServerAlreadyRentedError,
    ServerOfflineError,
)


def test_a_wrong_key_is_an_authentication_error_with_http_401(target: Target) -> None:
    """An unknown key: AuthenticationError, code 3, HTTP 401, the key not in the message."""
    bad_key = "0123456789abcdef" * 2
    client = target.client(bad_key)
    for call in (client.wallets, client.my_orders):
        with pytest.raises(AuthenticationError) as caught:
            call()
        assert (caught.value.code, caught.value.status_code) == (3, 401)
        assert bad_key not in str(caught.value)
    assert client.marketplace()  # public: an invalid key counts as none


def test_a_server_rented_by_one_user_refuses_a_second(target: Target) -> None:
    """A second user renting the same server: ServerAlreadyRentedError; the first keeps it."""
    client = target.client()
    server = cheapest(client)
    mine = client.create_order(server.id, IMAGE)
    key, _ = target.create_user("bob", {"bitcoin": 1.0})
    bob = target.client(key)
    with pytest.raises(ServerAlreadyRentedError) as caught:
        bob.create_order(server.id, IMAGE)
    assert caught.value.error == "server-already-rented" and caught.value.code == 6
    assert bob.my_orders() == []
    assert [o.id for o in client.my_orders()] == [mine.id]


def test_a_server_rented_on_the_market_refuses_the_caller(target: Target) -> None:
    """A server listed rented (another renter holds it) refuses an on-demand order."""
    client = target.client()
    taken = next(s for s in client.marketplace() if s.rented and CURRENCY in s.allowed_coins)
    with pytest.raises(ServerAlreadyRentedError):
        client.create_order(taken.id, IMAGE)


def test_releasing_a_server_makes_it_rentable(target: Target) -> None:
    """set_server(rented=False) ends the other renter's order; then renting works."""
    client = target.client()
    taken = next(s for s in client.marketplace() if s.rented and CURRENCY in s.allowed_coins)
    target.set_server(taken.id, rented=False)
    assert not is_rented(client, taken.id)
    assert client.create_order(taken.id, IMAGE).si == taken.id


def test_a_wallet_that_cannot_pay_is_not_enough_balance(target: Target) -> None:
    """A user whose wallet cannot pay an hour and the creation fee: NotEnoughBalanceError."""
    key, _ = target.create_user("poor", {"bitcoin": 1e-9})
    poor = target.client(key)
    server = cheapest(poor)
    with pytest.raises(NotEnoughBalanceError) as caught:
        poor.create_order(server.id, IMAGE)
    assert caught.value.error == "not_enough_balance"
    assert poor.my_orders(include_completed=True) == []
    with pytest.raises(NotEnoughBalanceError):
        poor.create_order(server.id, IMAGE, currency="clore")  # an empty wallet


def test_a_currency_the_server_does_not_take_is_refused(target: Target) -> None:
    """Paying in a currency outside allowed_coins: CurrencyNotAllowedError."""
    client = target.client()
    servers = client.marketplace()
    server = next(s for s in rentable(servers) if "CLORE-Blockchain" not in s.allowed_coins)
    with pytest.raises(CurrencyNotAllowedError) as caught:
        client.create_order(server.id, IMAGE, currency="clore")
    assert caught.value.error == "currency-not-allowed"
    assert client.my_orders() == []


def test_a_required_price_that_differs_is_price_changed(target: Target) -> None:
    """required_price must equal the current price; after a reprice the old one is refused."""
    client = target.client()
    server = cheapest(client)
    price = server.price_per_day(CURRENCY) or 0
    with pytest.raises(PriceChangedError) as caught:
        client.create_order(server.id, IMAGE, required_price=price * 1.5)
    assert caught.value.error == "price-changed"
    target.set_server(server.id, price={"on_demand": {CURRENCY: price * 2}})
    with pytest.raises(PriceChangedError):
        client.create_order(server.id, IMAGE, required_price=price)
    order = client.create_order(server.id, IMAGE, required_price=price * 2)
    assert order.price == pytest.approx(price * 2)


def test_a_spot_required_price_is_compared_with_the_spot_minimum(target: Target) -> None:
    """For spot, required_price must equal the server's spot minimum, else PriceChangedError."""
    client = target.client()
    server = cheapest(client, spot=True)
    minimum = server.price_per_day(CURRENCY, spot=True) or 0
    bid = 2 * minimum
    with pytest.raises(PriceChangedError):
        client.create_order(server.id, IMAGE, "spot", spotprice=bid, required_price=minimum * 1.1)
    order = client.create_order(server.id, IMAGE, "spot", spotprice=bid, required_price=minimum)
    assert order.spot and order.price == pytest.approx(2 * minimum)


def test_an_offline_server_refuses_orders_and_leaves_the_marketplace(target: Target) -> None:
    """set_server(online=False): ServerOfflineError, and the marketplace stops listing it."""
    client = target.client()
    server = cheapest(client)
    target.set_server(server.id, online=False)
    with pytest.raises(ServerOfflineError) as caught:
        client.create_order(server.id, IMAGE)
    assert caught.value.error == "server-offline"
    assert by_id(client, server.id) is None
    target.set_server(server.id, online=True)
    assert client.create_order(server.id, IMAGE).si == server.id


def test_an_unknown_server_id_is_invalid_input(target: Target) -> None:
    """Renting an id no server has: InvalidInputError (code 2)."""
    client = target.client()
    unknown = max(s.id for s in client.marketplace()) + 1000
    with pytest.raises(InvalidInputError) as caught:
        client.create_order(unknown, IMAGE)
    assert caught.value.code == 2


def test_another_users_order_is_not_found_and_cannot_be_cancelled(target: Target) -> None:
    """Someone else's order id: get_order raises OrderNotFoundError, cancel_order code 2."""
    key, _ = target.create_user("bob", {"bitcoin": 1.0})
    bob = target.client(key)
    theirs = bob.create_order(cheapest(bob).id, IMAGE)
    client = target.client()
    with pytest.raises(OrderNotFoundError):
        client.get_order(theirs.id)
    with pytest.raises(InvalidInputError):
        client.cancel_order(theirs.id)
    assert not bob.get_order(theirs.id).expired


def test_bad_arguments_raise_parameter_error_and_send_nothing(target: Target) -> None:
    """Invalid arguments raise ParameterError (a ValueError) before any request."""
    client = target.client()
    server = cheapest(client)
    bad_calls: list[dict[str, Any]] = [
        {"image": ""},
        {"image": IMAGE, "currency": "dogecoin"},
        {"image": IMAGE, "order_type": "spot"},
        {"image": IMAGE, "ports": {22: "sctp"}},
        {"image": IMAGE, "ssh_password": "not alphanumeric!"},
    ]
    for arguments in bad_calls:
        with pytest.raises(ParameterError):
            client.create_order(server.id, **arguments)
    with pytest.raises(ValueError):
        client.set_spot_price(1, -1.0)
    assert client.my_orders(include_completed=True) == []
