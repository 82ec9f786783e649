"""The edges of the job runner's money and time limits (found by mutation testing): what
an order has cost the job, its projected cost at the next check, when a limit is reached,
and how long the GPUs have been idle. Pure: orders as records, times as numbers."""

from __future__ import annotations

import pytest

from clore import Order
from clore.jobs._limits import IdleTracker, OrderCost, order_cost, projected_cost, reached
from clore.rentals.verify.settle import FREE_WINDOW

CT = 1_700_000_000.0
# Figures exact in binary floating point: 86400/day is 1 per second.
ORDER = Order(id=1, price=86400, spend=10, ct=CT, creation_fee=0.5)


# --------------------------------------------------------------------------- cost so far


def test_an_orders_cost_is_its_spend_plus_the_renter_fee() -> None:
    """Spend 10 at 25 %: fees 2.5, total 12.5 (no creation fee within the free window)."""
    cost = order_cost(ORDER, CT + 60, fee_percent=25.0, created=True)
    assert OrderCost(10.0, 2.5) == cost
    assert cost.total == 12.5


def test_the_creation_fee_counts_from_the_end_of_the_free_window() -> None:
    """Ended sooner than ``FREE_WINDOW``: none; at the window and after: the fee."""
    early = order_cost(ORDER, CT + FREE_WINDOW - 0.5, fee_percent=25.0, created=True)
    at = order_cost(ORDER, CT + FREE_WINDOW, fee_percent=25.0, created=True)
    later = order_cost(ORDER, CT + FREE_WINDOW + 3600, fee_percent=25.0, created=True)
    assert (early.fees, at.fees, later.fees) == (2.5, 3.0, 3.0)


def test_an_adopted_order_pays_no_creation_fee_and_counts_from_its_base() -> None:
    """An order the job did not create: spend since adoption, renter fee, nothing more."""
    cost = order_cost(ORDER, CT + 7200, fee_percent=25.0, created=False, spend_base=6.0)
    assert OrderCost(4.0, 1.0) == cost


def test_a_spend_under_its_base_costs_nothing() -> None:
    """A spend the API reports below the adoption base is 0, not a refund."""
    cost = order_cost(ORDER, CT + 60, fee_percent=25.0, created=False, spend_base=10.5)
    assert OrderCost(0.0, 0.0) == cost
    cost = order_cost(ORDER, CT + 60, fee_percent=25.0, created=False, spend_base=9.5)
    assert OrderCost(0.5, 0.125) == cost


# --------------------------------------------------------------------------- projected


def test_the_projection_adds_the_next_polls_running_plus_fee_and_creation_fee() -> None:
    """(spend 10 + 1/s x 2 s) x 1.25 + 0.5 creation fee = 15.5, even inside the window."""
    assert projected_cost(ORDER, CT + 1, 2.0, fee_percent=25.0, created=True) == 15.5


def test_the_projection_of_an_adopted_order_counts_from_its_base_without_creation_fee() -> None:
    """(10 - 4 + 2) x 1.25 = 10."""
    assert (
        projected_cost(ORDER, CT + 1, 2.0, fee_percent=25.0, created=False, spend_base=4.0) == 10.0
    )


def test_the_projection_never_subtracts() -> None:
    """A negative lookahead or a spend under its base adds nothing (and takes nothing)."""
    assert projected_cost(ORDER, CT, -5.0, fee_percent=25.0, created=False) == 12.5
    assert projected_cost(ORDER, CT, 1.0, fee_percent=25.0, created=False, spend_base=11.0) == 1.25
    assert projected_cost(ORDER, CT, 0.0, fee_percent=0.0, created=True, spend_base=10.5) == 0.5


def test_the_projection_is_per_day_of_the_price() -> None:
    """Price 86400/day over a 3600 s poll gap: 3600 more."""
    free = Order(id=2, price=86400, spend=0, ct=CT)
    assert projected_cost(free, CT, 3600.0, fee_percent=0.0, created=True) == 3600.0
    assert projected_cost(free, CT, 3600.0, fee_percent=5.0, created=True) == 3780.0


# --------------------------------------------------------------------------- reached


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        (10.0, 10.0, True),
        (11.0, 10.0, True),
        (10.0 - 1e-12, 10.0, True),  # float noise under the limit
        (9.9999, 10.0, False),
        (5.0, 10.0, False),
        (0.0, 0.0, True),
        (-10.0 - 1e-12, -10.0, True),  # the noise is relative to the limit's size
        (-10.001, -10.0, False),
    ],
)
def test_a_limit_is_reached_at_it_up_to_float_noise(
    value: float, limit: float, expected: bool
) -> None:
    """``reached`` is ``>=`` with a relative slack of 1e-9."""
    assert expected == reached(value, limit)


# --------------------------------------------------------------------------- idle


def test_idle_is_reported_once_every_sample_stayed_under_the_threshold_long_enough() -> None:
    """Under 5 % from t=0: nothing at 30 s, 60 idle seconds at 60 s and 61 at 61 s."""
    idle = IdleTracker(seconds=60, threshold=5)
    assert (idle.last, idle.since) == (None, None)  # no reading yet, no count
    assert [
        idle.sample([1.0, 4.0], 0.0),
        idle.sample([2.0], 30.0),
        idle.sample([0.0, 4.9], 60.0),
        idle.sample([3.0], 61.0),
    ] == [None, None, 60.0, 61.0]
    assert idle.last == 3.0


def test_one_busy_sample_starts_the_count_again() -> None:
    """A GPU at the threshold is busy: idle counts anew from the next quiet sample."""
    idle = IdleTracker(seconds=60, threshold=5)
    assert idle.sample([1.0], 0.0) is None
    assert idle.sample([1.0, 5.0], 50.0) is None
    assert (idle.last, idle.since) == (5.0, None)
    assert [
        idle.sample([1.0], 70.0),
        idle.sample([1.0], 120.0),
        idle.sample([1.0], 130.0),
    ] == [None, None, 60.0]
    assert idle.since == 70.0


def test_no_gpu_reading_counts_as_idle_at_zero() -> None:
    """An empty reading is 0 % (under a 1 % threshold)."""
    idle = IdleTracker(seconds=10, threshold=1)
    assert [idle.sample([], 100.0), idle.sample([], 110.0)] == [None, 10.0]
    assert idle.last == 0.0


def test_a_zero_idle_limit_reports_the_first_quiet_sample() -> None:
    """``seconds=0``: the first quiet sample is already idle long enough."""
    idle = IdleTracker(seconds=0, threshold=50)
    assert idle.sample([10.0], 5.0) == 0.0
