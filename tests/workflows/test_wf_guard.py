"""Unit tests of the budget guards, the limit registry and the runway warning."""

from __future__ import annotations

import json

import pytest
from wf_fakes import FakeClient, ScriptedClock, server

from clore._paths import data_dir
from clore._wire import Order
from clore.workflows.guard import breach, guard, register_limits, registered_limits
from clore.workflows.plan import Limits, planned_cost, planned_seconds

START = 1_700_000_000.0


def test_breach_looks_one_poll_ahead() -> None:
    """An order is over its limit when the next poll would find it over, not only after."""
    order = Order(id=1, ct=START, price=0.0864, spend=0.009)  # 0.001 per 1000 s
    assert breach(order, START + 100, Limits(max_spend=0.01)) is None
    crossed = breach(order, START + 100, Limits(max_spend=0.01), lookahead=1000)
    assert crossed is not None and crossed.limit == "max_spend"
    assert breach(order, START + 500, Limits(max_time=600), lookahead=100) is not None
    assert breach(order, START + 499, Limits(max_time=600), lookahead=100) is None


def test_guard_cancels_an_order_crossing_max_spend_without_an_issue() -> None:
    """The guarded order is cancelled with no issue text and the reason goes to guard.log."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.0864)])
    order = client.create_order(1, "img")
    events = list(guard(client, clock, order_ids=[order.id], limits=Limits(max_spend=0.005)))
    assert [e.kind for e in events] == ["guard_cancelled"]
    assert ("cancel_order", (order.id, None)) in [(n, a) for _, n, a in client.calls]
    assert client.orders[order.id]["spend_before"] <= 0.005
    (line,) = (data_dir() / "workflows" / "guard.log").read_text().splitlines()
    assert json.loads(line)["order_id"] == order.id
    assert "max_spend" in json.loads(line)["reason"]
    assert "limit 0.005 BTC" in json.loads(line)["reason"]


def test_guard_all_enforces_registered_limits() -> None:
    """`guard --all` without explicit limits applies the limits registered at rent time."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.0001), server(2, 0.0001)])
    kept = client.create_order(1, "img")
    limited = client.create_order(2, "img")
    register_limits(limited.id, Limits(max_time=300))
    events = list(guard(client, clock, interval=60, until=START + 1200))
    assert [(e.kind, e.order_id) for e in events] == [("guard_cancelled", limited.id)]
    assert not client.orders[kept.id]["expired"]
    assert limited.id not in registered_limits()


def test_guard_warns_when_a_wallet_runway_gets_short() -> None:
    """A balance lasting less than the threshold at the current burn yields one warning."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.01)])
    client.wallet_balance = {"bitcoin": 0.005}
    client.create_order(1, "img")
    events = list(guard(client, clock, runway_below=86400, interval=60, until=START + 600))
    assert [e.kind for e in events] == ["low_runway"]
    assert events[0].details["runway_seconds"] == pytest.approx(43200)


def test_planned_duration_is_max_time_capped_by_mrl_else_mrl() -> None:
    """The budget rule: --max-time (at most mrl) when given, else the server's mrl."""
    srv = server(1, 0.0002, mrl=10)
    assert planned_seconds(srv, max_time=3600) == 3600
    assert planned_seconds(srv, max_time=86400) == 36000
    assert planned_seconds(srv) == 36000
    assert planned_seconds(server(2, mrl=0)) is None
    assert planned_cost(0.0002, 43200) == pytest.approx(0.0001)
    assert planned_cost(0.0002, 43200, max_spend=0.00005) == 0.00005
    assert planned_cost(0.0002, None, max_spend=0.00005) == 0.00005


def test_runway_counts_the_renter_fee_paid_on_top_of_the_price() -> None:
    """The burn rate is the price plus the renter fee: 10% on demand shortens the runway."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.01)])
    client.fee_percent["on_demand"] = 10.0
    client.wallet_balance = {"bitcoin": 0.005}
    client.create_order(1, "img")
    events = list(guard(client, clock, runway_below=86400, interval=60, until=START + 600))
    assert [e.kind for e in events] == ["low_runway"]
    assert events[0].details["burn_per_day"] == pytest.approx(0.011)
    assert events[0].details["runway_seconds"] == pytest.approx(43200 / 1.1)


def test_guard_stops_at_until_not_one_interval_later() -> None:
    """--until/--for end the guard at that time, not at the next check after it."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.0001)])
    client.create_order(1, "img")
    list(guard(client, clock, limits=Limits(max_time=86400), interval=60, until=START + 90))
    assert clock.time() - START == 90
    assert client.count("my_orders") == 2
