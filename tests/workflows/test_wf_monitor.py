"""Unit tests of the order monitor's events over a small in-process sandbox."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wf_sandbox import START, Scripted, World, record

from clore.workflows.monitor import OrderMonitor


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, [record(1, 0.0001, mrl=2.0), record(2, 0.0002, mrl=24.0)])
    yield w
    w.close()


def setup(world: World, api_key: str | None = None, **kw: Any) -> tuple[Scripted, OrderMonitor]:
    client = world.scripted(api_key)
    options: dict[str, Any] = {"interval": 10.0, "until": START + 600, **kw}
    return client, OrderMonitor(client, world.clock, **options)


def kinds(events: list[Any]) -> list[tuple[str, int | None]]:
    return [(e.kind, e.order_id) for e in events]


def test_existing_orders_are_tracked_and_new_ones_reported_created_then_ready(
    world: World,
) -> None:
    """An order present at start is 'tracking'; a new one is 'created', then 'ready' when up."""
    client, mon = setup(world, expiring_within=60)
    old = client.create_order(2, "img")
    world.clock.set(START + 30)  # the old order is provisioned (10 s) when the monitor starts
    created: list[float] = []

    def another_session_rents() -> None:
        created.append(world.clock.time())
        world.rent(1)

    world.at(15, another_session_rents)
    events = [e for e in mon.run() if e.kind in ("tracking", "created", "ready")]
    new_id = old.id + 1
    assert [("tracking", old.id), ("created", new_id), ("ready", new_id)] == kinds(events)
    assert events[0].details["ready"] is True
    # Created at +45, provisioned 10 s later, seen ready by the next poll after that (+60).
    assert created == [START + 45] and events[2].at == START + 60


def test_ready_waits_for_the_probe(world: World) -> None:
    """With a probe, 'ready' comes only when the SSH endpoint answers."""
    client, _mon = setup(world)
    order = client.create_order(2, "img")
    answers = iter([False, False, True])
    probed: list[float] = []

    def probe(host: str, port: int) -> bool:
        probed.append(world.clock.time())
        return next(answers, True)

    loop = OrderMonitor(client, world.clock, interval=10.0, until=START + 60, probe=probe)
    ready = [e for e in loop.run() if e.kind == "ready"]
    assert len(ready) == 1
    up = world.order(order.id)
    port = up.tcp_ports[0].split(":")[1]
    assert ready[0].details["ssh"] == f"ssh root@{up.pub_cluster[0]} -p {port}"
    assert len(probed) == 3 and ready[0].at == probed[-1]  # the third try answers
    assert [b - a for a, b in itertools.pairwise(probed)] == [10.0, 10.0]


def test_spot_outbid_and_resumed_are_reported(world: World) -> None:
    """A spot order that loses the top bid yields 'outbid'; winning again yields 'resumed'."""
    client, mon = setup(world)
    order = client.create_order(2, "img", order_type="spot", spotprice=0.0002)
    rival = world.user("rival")
    rival_bid: list[int] = []
    world.at(15, lambda: rival_bid.append(world.bid(2, 0.0003, rival)))
    world.at(35, lambda: world.end(rival_bid[0], rival))
    events = [e for e in mon.run() if e.kind in ("outbid", "resumed")]
    assert [("outbid", order.id), ("resumed", order.id)] == kinds(events)
    assert events[0].details["winning_bid"] == 0.0003


def test_price_changes_expiry_and_spend_thresholds_are_reported_once(world: World) -> None:
    """Price change, expiring-soon, expired and each spend threshold are reported exactly once."""
    client, mon = setup(
        world, expiring_within=3600, spend_thresholds=[0.000001, 0.000005], until=START + 3 * 3600
    )
    mon.interval = 60.0
    order = client.create_order(1, "img", order_type="spot", spotprice=0.0001)
    world.at(100, lambda: world.set_bid(order.id, 0.00011))
    events = [e for e in mon.run() if e.kind not in ("tracking", "ready")]
    assert [e.kind for e in events] == ["price_changed", "spend", "expiring", "spend", "expired"]
    assert [e.details["threshold"] for e in events if e.kind == "spend"] == [0.000001, 0.000005]
    assert "(threshold 0.00000100 BTC)" in next(e.message for e in events if e.kind == "spend")
    assert 3600 >= events[2].details["time_left"] > 3540
    # Messages follow the output rules: the currency's digits, human durations.
    assert events[0].message == f"order {order.id}: price 0.0001000 -> 0.0001100 BTC/day"
    assert events[2].message in (f"order {order.id} expires in {t}" for t in ("59 min", "1 h"))


def test_an_order_ended_early_is_reported_cancelled(world: World) -> None:
    """An order that vanishes well before ct + mrl is 'cancelled' with its final spend."""
    client, mon = setup(world)
    order = client.create_order(2, "img")
    world.at(100, lambda: world.end(order.id))
    events = [e for e in mon.run() if e.kind == "cancelled"]
    assert len(events) == 1
    assert events[0].details["spend"] > 0
    # About 24 h - 100 s left (mrl 24 h), in the human form.
    assert re.fullmatch(rf"order {order.id} ended 23 h 5\d min before its time", events[0].message)


def test_low_wallet_runway_is_warned_once(world: World) -> None:
    """A wallet lasting less than the threshold at the burn rate yields one 'low_runway'."""
    # 0.0003 BTC / (0.0002 + 10% fee) per day: about 1.4 days.
    client, mon = setup(world, world.user("tight", 0.0003), runway_below=2 * 86400, runway_every=0)
    client.create_order(2, "img")
    events = [e for e in mon.run() if e.kind == "low_runway"]
    assert len(events) == 1
    details = events[0].details
    assert details["burn_per_day"] == pytest.approx(0.00022)
    assert pytest.approx(details["balance"] / 0.00022 * 86400) == details["runway_seconds"]
    assert 1.3 * 86400 < details["runway_seconds"] < 1.4 * 86400
    # 31.2 to 33.6 hours, in the human form (not "32.7 h").
    pattern = r"bitcoin wallet runs out in 1 d (?:7|8|9|10) h at the burn rate"
    assert re.fullmatch(pattern, events[0].message), events[0].message


def test_poll_failures_do_not_stop_the_monitor(world: World) -> None:
    """A failing my_orders yields an 'error' event and the monitor keeps polling."""
    client, mon = setup(world)
    client.create_order(2, "img")
    world.sandbox.inject_fault("my_orders", "db_error", count=3 * 4)  # 3 polls, 4 tries each
    events = list(mon.run())
    assert [e.kind for e in events][:4] == ["error", "error", "error", "tracking"]


def test_rounds_yield_one_batch_per_poll_and_expose_the_latest_orders(world: World) -> None:
    """rounds(): one list per poll (empty when nothing changed); orders holds the last records."""
    client, mon = setup(world)
    first = client.create_order(1, "img")
    mon.until = world.clock.time() + 35
    batches = list(mon.rounds())
    assert len(batches) == 4  # polls at +0, +10, +20, +30
    assert kinds(batches[0]) == [("tracking", first.id)]
    assert [] in batches[1:]  # a poll that saw no change still yields (a view redraws)
    assert [o.id for o in mon.orders] == [first.id]
    assert mon.spot_active(first.id) is None and mon.spot_active(424242) is None


def test_low_runway_counts_the_renter_fee(world: World) -> None:
    """The monitor's burn rate is the price plus the renter fee (read once)."""
    client, mon = setup(world, world.user("tight", 0.00015), runway_below=2 * 86400, runway_every=0)
    client.create_order(1, "img")
    events = [e for e in mon.run() if e.kind == "low_runway"]
    assert [e.details["burn_per_day"] for e in events] == [pytest.approx(0.00011)]
    assert client.count("renter_fees") == 1
