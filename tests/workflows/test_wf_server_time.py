"""The loops compare API times on the server's clock: a client on real time against a
sandbox 60 times faster (fake clocks: nothing sleeps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from wf_sandbox import DEFAULT_SERVERS

from _stub.scaled_clock import FakeRealClock, ScaledClock
from clore import Clore, Pacing
from clore.sandbox import BASE_URL, Sandbox
from clore.workflows import Limits, OrderMonitor, SpotKeeper, guard

SCALE = 60.0
MRL = 72 * 3600  # the seed's servers: 72 h


@pytest.fixture
def real() -> FakeRealClock:
    return FakeRealClock()


@pytest.fixture
def sandbox(tmp_path: Path, real: FakeRealClock) -> Iterator[Sandbox]:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"servers": DEFAULT_SERVERS}))
    with Sandbox(db=":memory:", seed=str(seed), clock=ScaledClock(real, SCALE)) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox, real: FakeRealClock) -> Iterator[Clore]:
    with Clore(
        sandbox.demo_key,
        base_url=BASE_URL,
        transport=sandbox.transport(),
        clock=real,
        pacing=Pacing(shared=False),
    ) as c:
        yield c


def test_expiring_counts_the_sandbox_hours(client: Clore, real: FakeRealClock) -> None:
    """Five real minutes are five sandbox hours: an order with 67 h left is `expiring`
    within 68 h, though only five minutes passed here."""
    order = client.create_order(11, "img")
    monitor = OrderMonitor(client, real, interval=30, expiring_within=68 * 3600, check_spot=False)
    assert [e.kind for e in monitor.poll(first=True)] == ["tracking"]
    real.advance(300)
    events = monitor.poll()
    assert [e.kind for e in events] == ["expiring"]
    assert events[0].order_id == order.id
    assert events[0].details["time_left"] == pytest.approx(MRL - 5 * 3600 - 120, abs=300)


def test_an_order_that_ran_its_course_is_expired_not_cancelled(
    client: Clore, real: FakeRealClock
) -> None:
    """72 sandbox hours are 72 real minutes: the order ended at its time, so `expired`."""
    client.create_order(11, "img")
    monitor = OrderMonitor(client, real, interval=30, check_spot=False)
    monitor.poll(first=True)
    real.advance(MRL / SCALE + 5)
    assert [e.kind for e in monitor.poll()] == ["expired"]


def test_an_order_cancelled_early_is_cancelled_with_the_sandbox_time_left(
    client: Clore, real: FakeRealClock
) -> None:
    """Cancelled one sandbox hour in: `cancelled`, about 71 h before its time."""
    order = client.create_order(11, "img")
    monitor = OrderMonitor(client, real, interval=30, check_spot=False)
    monitor.poll(first=True)
    real.advance(60)
    client.cancel_order(order.id)
    (event,) = monitor.poll()
    assert event.kind == "cancelled"
    assert event.details["time_left"] == pytest.approx(MRL - 3600, abs=300)


def test_guard_max_time_ages_orders_on_the_sandbox_clock(
    client: Clore, real: FakeRealClock
) -> None:
    """--max-time 1h with a 30 s poll (30 sandbox minutes): cancelled 40 real s in."""
    order = client.create_order(11, "img")
    limits = Limits(max_time=3600)
    first = list(guard(client, real, order_ids=[order.id], limits=limits, interval=30, once=True))
    assert first == []
    real.advance(40)
    events = list(guard(client, real, order_ids=[order.id], limits=limits, interval=30, once=True))
    assert [e.kind for e in events] == ["guard_cancelled"]
    assert client.get_order(order.id).expired


def test_the_keeper_lowers_every_ten_real_seconds(client: Clore, real: FakeRealClock) -> None:
    """Alone above the minimum, the bid steps down once per 600 sandbox seconds: about
    every 10 real seconds, with no refusal from the API or the SDK."""
    order = client.create_order(11, "img", order_type="spot", spotprice=0.0001)
    keeper = SpotKeeper(client, real, order.id, max_bid=0.00015, interval=5, until=real.time() + 60)
    events = list(keeper.run())
    kinds = [e.kind for e in events]
    assert kinds.count("bid_lowered") >= 5
    assert "error" not in kinds
    waits = [e.details["wait"] for e in events if e.kind == "lower_wait"]
    assert waits and max(waits) <= 10
