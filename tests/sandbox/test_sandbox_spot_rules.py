"""The sandbox's spot rules at their edges: which orders set_spot_price takes, who sees a
hidden server's spot market, a lowering that hands the server to a rival bid, and what a
refusal names (found by mutation testing of ``sandbox/backend/spot.py`` and ``billing.py``).
Called on the backend of the small market, as the other domain tests are."""

from __future__ import annotations

import pytest

from clore._clock import ManualClock
from clore._wire import CreateOrderRequest, SetSpotPriceRequest
from clore.sandbox import ApiError, Sandbox
from clore.sandbox.backend import Backend
from clore.sandbox.backend.rules import PROVISIONING_DELAY

BTC_DAY = 0.0864  # the small market's on-demand price; its lowest spot bid is half of it


def order(server: int, spotprice: float | None = None) -> CreateOrderRequest:
    return CreateOrderRequest(
        currency="bitcoin",
        image="ubuntu:22.04",
        renting_server=server,
        type="on-demand" if spotprice is None else "spot",
        spotprice=spotprice,
    )


def set_price(backend: Backend, user: int, order_id: object, price: object) -> None:
    backend.set_spot_price(user, SetSpotPriceRequest(order_id=order_id, desired_price=price))  # type: ignore[arg-type]


def refusal(fn: object, *args: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value


def price_of(backend: Backend, user: int, order_id: int) -> float:
    (view,) = [v for v in backend.my_orders(user, True) if v.order.id == order_id]
    return view.order.price


@pytest.fixture
def backend(small: Sandbox) -> Backend:
    return small.backend


@pytest.fixture
def renter(small: Sandbox) -> int:
    return small.create_user("renter", {"bitcoin": 1.0})[1]


@pytest.fixture
def rival(small: Sandbox) -> int:
    return small.create_user("rival", {"bitcoin": 1.0})[1]


def demo(small: Sandbox) -> int:
    user = small.backend.authenticate(small.demo_key)
    assert user is not None
    return user


# --------------------------------------------------------------------------- which orders


def test_set_spot_price_refuses_an_on_demand_order(backend: Backend, renter: int) -> None:
    """An on-demand order has no bid: code 2 naming the order, and its price stays."""
    oid = backend.create_order(renter, order(4))
    refused = refusal(set_price, backend, renter, oid, BTC_DAY * 2)
    assert (refused.code, refused.detail, price_of(backend, renter, oid)) == (
        2,
        "order_id: not a live spot offer",
        BTC_DAY,
    )


def test_set_spot_price_refuses_an_order_that_is_not_the_callers(
    backend: Backend, renter: int, rival: int
) -> None:
    """Another user's offer gets code 2, 'no such order', as an unknown id would."""
    oid = backend.create_order(renter, order(4, spotprice=0.1))
    refused = refusal(set_price, backend, rival, oid, 0.2)
    assert (refused.code, refused.detail, price_of(backend, renter, oid)) == (
        2,
        "order_id: no such order",
        0.1,
    )


@pytest.mark.parametrize("price", [0.0, -0.1, float("nan"), float("inf")])
def test_a_bid_that_is_not_a_positive_number_is_refused_naming_the_field(
    backend: Backend, renter: int, price: float
) -> None:
    """desired_price must be a positive number below the limit: code 2 naming the endpoint
    and the field."""
    oid = backend.create_order(renter, order(4, spotprice=0.1))
    refused = refusal(set_price, backend, renter, oid, price)
    detail = refused.detail or ""
    assert (refused.code, detail.startswith("set_spot_price: "), "$.desired_price" in detail) == (
        2,
        True,
        True,
    )
    assert price_of(backend, renter, oid) == 0.1


def test_a_raise_by_a_hair_is_a_change(backend: Backend, renter: int) -> None:
    """A bid a ten-billionth higher is taken (only equal bids are ignored)."""
    oid = backend.create_order(renter, order(4, spotprice=0.1))
    set_price(backend, renter, oid, 0.1 * (1 + 1e-10))
    assert price_of(backend, renter, oid) == 0.1 * (1 + 1e-10)


def test_the_largest_step_is_reported_to_eight_decimals(backend: Backend, renter: int) -> None:
    """A lowering beyond 10% is refused with max_step rounded to 8 decimals, as the API does."""
    oid = backend.create_order(renter, order(4, spotprice=0.123456789))
    refused = refusal(set_price, backend, renter, oid, 0.1)
    assert refused.body() == {"code": 6, "error": "exceeded_max_step", "max_step": 0.01234568}


# --------------------------------------------------------------------------- hidden servers


def test_a_hidden_servers_spot_market_is_its_owners_alone(
    small: Sandbox, backend: Backend, renter: int
) -> None:
    """A server its host hid shows its spot market to the host and to nobody else."""
    small.set_server(6, visible=False)  # one of the demo user's servers
    owner_view = backend.spot_marketplace(demo(small), 6)
    assert (owner_view is not None, backend.spot_marketplace(renter, 6)) == (True, None)
    assert backend.spot_marketplace(None, 6) is None


def test_a_spot_market_id_out_of_range_is_refused_naming_market(backend: Backend) -> None:
    """spot_marketplace with id 0 answers code 2 naming the market parameter."""
    refused = refusal(backend.spot_marketplace, None, 0)
    assert (refused.code, refused.detail) == (2, "market: out of range")


# --------------------------------------------------------------------------- rival bids


def test_lowering_below_a_rival_hands_the_server_over(
    backend: Backend, renter: int, rival: int, clock: ManualClock
) -> None:
    """Lowering the running bid under a rival's makes the rival's offer run (and be set up)
    and pauses ours: from then on the rival pays and we do not."""
    ours = backend.create_order(renter, order(4, spotprice=0.1))
    theirs = backend.create_order(rival, order(4, spotprice=0.095))
    clock.advance(100)
    set_price(backend, renter, ours, 0.09)
    market = backend.spot_marketplace(None, 4)
    assert market is not None
    assert [(o.id, o.active) for o, _ in market.offers] == [(theirs, True), (ours, False)]
    (rival_view,) = backend.my_orders(rival, False)
    assert rival_view.order.ready_at == pytest.approx(clock.time() + PROVISIONING_DELAY)
    spent = backend.my_orders(renter, False)[0].spend
    balance = next(w.balance for w in backend.wallets(renter) if w.currency == "bitcoin")
    clock.advance(1000)
    assert backend.my_orders(renter, False)[0].spend == spent
    assert next(w.balance for w in backend.wallets(renter) if w.currency == "bitcoin") == balance
    assert backend.my_orders(rival, False)[0].spend == pytest.approx(0.095 * 1000 / 86400)
