"""Clore's creation-fee rule: taken once an order has run 10 minutes, never when it ends
before."""

from __future__ import annotations

import pytest

from clore._wire import CancelOrderRequest, CreateOrderRequest, SetSpotPriceRequest
from clore.sandbox import Sandbox
from clore.sandbox.backend.rules import CREATION_FEE_AFTER, CREATION_FEES

FEE = CREATION_FEES["on_demand"]["bitcoin"]
RATE = 0.0864 / 86400 * 1.1  # BTC per second of server 1, renter fee included


def _renter(small: Sandbox) -> int:
    return small.create_user("renter", {"bitcoin": 1.0})[1]


def _balance(small: Sandbox, user: int) -> float:
    (wallet,) = [w for w in small.backend.wallets(user) if w.currency == "bitcoin"]
    return wallet.balance


def _rent(small: Sandbox, user: int) -> int:
    request = CreateOrderRequest(currency="bitcoin", image="img", renting_server=1)
    return small.backend.create_order(user, request)


def test_an_order_cancelled_before_ten_minutes_pays_no_creation_fee(small: Sandbox) -> None:
    """Cancelled after 9 minutes, the wallet paid the running time only."""
    user = _renter(small)
    order = _rent(small, user)
    small.advance(CREATION_FEE_AFTER - 60)
    small.backend.cancel_order(user, CancelOrderRequest(id=order))
    assert 1.0 - _balance(small, user) == pytest.approx(RATE * (CREATION_FEE_AFTER - 60))
    small.advance(3600)
    assert 1.0 - _balance(small, user) == pytest.approx(RATE * (CREATION_FEE_AFTER - 60))


def test_the_creation_fee_is_taken_once_the_order_has_run_ten_minutes(small: Sandbox) -> None:
    """Just before 10 minutes nothing but the running time is paid; from 10 minutes on the
    fee too, once."""
    user = _renter(small)
    _rent(small, user)
    small.advance(CREATION_FEE_AFTER - 1)
    assert 1.0 - _balance(small, user) == pytest.approx(RATE * (CREATION_FEE_AFTER - 1))
    small.advance(1)
    assert 1.0 - _balance(small, user) == pytest.approx(RATE * CREATION_FEE_AFTER + FEE)
    small.advance(3600)
    assert 1.0 - _balance(small, user) == pytest.approx(RATE * (CREATION_FEE_AFTER + 3600) + FEE)


def test_a_read_after_ten_minutes_shows_the_fee_without_a_write(small: Sandbox) -> None:
    """The fee is a scheduled event: a balance read past it includes it."""
    user = _renter(small)
    _rent(small, user)
    small.clock.advance(CREATION_FEE_AFTER + 5)  # the clock only: no settle ran
    assert 1.0 - _balance(small, user) == pytest.approx(RATE * (CREATION_FEE_AFTER + 5) + FEE)


def test_a_spot_order_counts_only_its_running_time(small: Sandbox) -> None:
    """A spot offer outbid before 10 minutes of running pays the fee only once its running
    time, not its age, reaches 10 minutes."""
    user = _renter(small)
    rival = small.create_user("rival", {"bitcoin": 1.0})[1]
    bid = CreateOrderRequest(
        currency="bitcoin", image="img", renting_server=4, type="spot", spotprice=0.05
    )
    order = small.backend.create_order(user, bid)
    small.advance(300)  # 5 minutes running
    over = CreateOrderRequest(
        currency="bitcoin", image="img", renting_server=4, type="spot", spotprice=0.08
    )
    rival_order = small.backend.create_order(rival, over)
    small.advance(3600)  # outbid: paused, not running
    record = small.backend.order_record(order)
    assert record is not None and record.extra.get("fee_paid") is None
    small.backend.set_spot_price(user, SetSpotPriceRequest(order_id=order, desired_price=0.09))
    small.advance(299)
    record = small.backend.order_record(order)
    assert record is not None and record.extra.get("fee_paid") is None
    small.advance(2)
    record = small.backend.order_record(order)
    assert record is not None and record.extra.get("fee_paid") is True
    assert rival_order > order
