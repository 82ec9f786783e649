"""Unit tests of the order monitor's events over the fake client."""

from __future__ import annotations

import pytest
from wf_fakes import FakeClient, ScriptedClock, server

from clore._errors import DatabaseError
from clore.workflows.monitor import OrderMonitor

START = 1_700_000_000.0


def setup(**kw: object) -> tuple[ScriptedClock, FakeClient, OrderMonitor]:
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.0001, mrl=2.0), server(2, 0.0002, mrl=24.0)])
    options: dict = {"interval": 10.0, "until": START + 600, **kw}
    return clock, client, OrderMonitor(client, clock, **options)


def kinds(events: list) -> list[tuple[str, int | None]]:
    return [(e.kind, e.order_id) for e in events]


def test_existing_orders_are_tracked_and_new_ones_reported_created_then_ready() -> None:
    """An order present at start is 'tracking'; a new one is 'created', then 'ready' when up."""
    clock, client, mon = setup(expiring_within=60)
    old = client.create_order(2, "img")
    client.provision_delay = 25.0
    clock.advance(30)  # the old order is provisioned by the time the monitor starts
    clock.after(15, lambda: client.create_order(1, "img"))
    events = [e for e in mon.run() if e.kind in ("tracking", "created", "ready")]
    new_id = old.id + 1
    assert [("tracking", old.id), ("created", new_id), ("ready", new_id)] == kinds(events)
    assert events[0].details["ready"] is True
    assert events[2].at == START + 70  # created at +45, provisioned and seen at +70


def test_ready_waits_for_the_probe() -> None:
    """With a probe, 'ready' comes only when the SSH endpoint answers."""
    clock, client, _mon = setup()
    client.create_order(2, "img")
    client.provision_delay = 5.0
    answers = iter([False, False, True])
    events = [
        e
        for e in OrderMonitor(
            client, clock, interval=10.0, until=START + 60, probe=lambda h, p: next(answers, True)
        ).run()
    ]
    ready = [e for e in events if e.kind == "ready"]
    assert len(ready) == 1
    assert ready[0].details["ssh"] == "ssh root@n1.example -p 10022"
    assert ready[0].at == START + 30  # provisioned at +5; the probe answers at the third try


def test_spot_outbid_and_resumed_are_reported() -> None:
    """A spot order that loses the top bid yields 'outbid'; winning again yields 'resumed'."""
    clock, client, mon = setup()
    order = client.create_order(2, "img", order_type="spot", spotprice=0.0002)
    clock.after(15, lambda: client.offers.setdefault(2, []).append({"offer_id": 9, "bid": 0.0003}))
    clock.after(35, lambda: client.offers[2].clear())
    events = [e for e in mon.run() if e.kind in ("outbid", "resumed")]
    assert [("outbid", order.id), ("resumed", order.id)] == kinds(events)
    assert events[0].details["winning_bid"] == 0.0003


def test_price_changes_expiry_and_spend_thresholds_are_reported_once() -> None:
    """Price change, expiring-soon, expired and each spend threshold are reported exactly once."""
    clock, client, mon = setup(
        expiring_within=3600, spend_thresholds=[0.000001, 0.000005], until=START + 3 * 3600
    )
    mon.interval = 60.0
    order = client.create_order(1, "img", order_type="spot", spotprice=0.0001)
    clock.after(100, lambda: client.set_spot_price(order.id, 0.00011))
    events = [e for e in mon.run() if e.kind != "tracking"]
    assert [e.kind for e in events] == ["price_changed", "spend", "expiring", "spend", "expired"]
    assert [e.details["threshold"] for e in events if e.kind == "spend"] == [0.000001, 0.000005]
    assert "(threshold 0.000001 BTC)" in next(e.message for e in events if e.kind == "spend")
    assert 3600 >= events[2].details["time_left"] > 3540


def test_an_order_ended_early_is_reported_cancelled() -> None:
    """An order that vanishes well before ct + mrl is 'cancelled' with its final spend."""
    clock, client, mon = setup()
    order = client.create_order(2, "img")
    clock.after(100, lambda: client.cancel_order(order.id))
    events = [e for e in mon.run() if e.kind == "cancelled"]
    assert len(events) == 1
    assert events[0].details["spend"] > 0


def test_low_wallet_runway_is_warned_once() -> None:
    """A wallet lasting less than the threshold at the burn rate yields one 'low_runway'."""
    _clock, client, mon = setup(runway_below=2 * 86400, runway_every=0)
    client.wallet_balance = {"bitcoin": 0.0003}  # 0.0003 / 0.0002 per day = 1.5 days
    client.create_order(2, "img")
    events = [e for e in mon.run() if e.kind == "low_runway"]
    assert len(events) == 1
    assert pytest.approx(1.5 * 86400) == events[0].details["runway_seconds"]


def test_poll_failures_do_not_stop_the_monitor() -> None:
    """A failing my_orders yields an 'error' event and the monitor keeps polling."""
    _clock, client, mon = setup()
    client.create_order(2, "img")
    client.fail["my_orders"] = [DatabaseError(1), DatabaseError(1), DatabaseError(1)]
    events = list(mon.run())
    assert [e.kind for e in events][:4] == ["error", "error", "error", "tracking"]


def test_rounds_yield_one_batch_per_poll_and_expose_the_latest_orders() -> None:
    """rounds(): one list per poll (empty when nothing changed); orders holds the last records."""
    _clock, client, mon = setup(until=START + 35)
    first = client.create_order(1, "img")
    batches = list(mon.rounds())
    assert len(batches) == 4  # polls at +0, +10, +20, +30
    assert kinds(batches[0]) == [("tracking", first.id)]
    assert [] in batches[1:]  # a poll that saw no change still yields (a view redraws)
    assert [o.id for o in mon.orders] == [first.id]
    assert mon.spot_active(first.id) is None and mon.spot_active(424242) is None


def test_low_runway_counts_the_renter_fee() -> None:
    """The monitor's burn rate is the price plus the renter fee (read once)."""
    _clock, client, mon = setup(runway_below=2 * 86400, runway_every=0)
    client.fee_percent["on_demand"] = 10.0
    client.wallet_balance = {"bitcoin": 0.00015}
    client.create_order(1, "img")
    events = [e for e in mon.run() if e.kind == "low_runway"]
    assert [e.details["burn_per_day"] for e in events] == [pytest.approx(0.00011)]
    assert client.count("renter_fees") == 1
