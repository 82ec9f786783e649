"""What the monitor and the spot keeper say when a spot order stops running: an on-demand
renter is told apart from a higher bid and from the server going offline (never
"outbid: x < 0")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wf_sandbox import START, World, record

from clore._wire import SpotMarket, SpotOffer, SpotServer
from clore.workflows.monitor import OrderMonitor
from clore.workflows.spot_bids import decide_bid
from clore.workflows.spot_keeper import SpotKeeper


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, [record(1, 0.0002, 0.00005), record(2, 0.0003, 0.00006)])
    yield w
    w.close()


def _monitor(world: World, **kw: Any) -> OrderMonitor:
    options: dict[str, Any] = {"interval": 10.0, "until": START + 60, **kw}
    return OrderMonitor(world.scripted(), world.clock, **options)


def _spot_order(world: World, sid: int = 2, bid: float = 0.0001) -> int:
    return world.scripted().create_order(sid, "img", order_type="spot", spotprice=bid).id


def test_an_on_demand_renter_pauses_the_bid_and_its_end_resumes_it(world: World) -> None:
    """Someone rents the server on demand: `paused` (on-demand), not `outbid`; when that
    rental ends the bid runs again: `resumed` (was on-demand)."""
    oid = _spot_order(world)
    rival = world.user("rival")
    theirs: list[int] = []
    world.at(15, lambda: theirs.append(world.rent(2, rival)))
    world.at(35, lambda: world.end(theirs[0], rival))
    events = [e for e in _monitor(world).run() if e.kind in ("outbid", "paused", "resumed")]
    assert [(e.kind, e.order_id) for e in events] == [("paused", oid), ("resumed", oid)]
    assert (events[0].details["reason"], events[1].details["was"]) == ("on-demand", "on-demand")
    assert events[0].message == (
        f"order {oid} paused: the server is rented on demand; the bid runs again when "
        "that rental ends"
    )
    assert "< 0" not in events[0].message
    assert events[1].message == f"order {oid} runs again: the on-demand rental ended"


def test_a_higher_bid_is_still_outbid_with_both_prices(world: World) -> None:
    """A rival's higher spot bid: `outbid` naming our bid and the winning one."""
    oid = _spot_order(world)
    world.at(15, lambda: world.bid(2, 0.0002, world.user("rival")))
    events = [e for e in _monitor(world).run() if e.kind in ("outbid", "paused")]
    assert [(e.kind, e.details.get("winning_bid")) for e in events] == [("outbid", 0.0002)]
    assert events[0].message == f"order {oid} outbid: 0.0001000 < 0.0002000 BTC/day"


def test_a_server_going_offline_is_one_paused_event(world: World) -> None:
    """Offline: the order's own `paused` (offline), and no `outbid` from the spot market."""
    oid = _spot_order(world)
    world.at(15, lambda: world.sandbox.set_server(2, online=False))
    events = [e for e in _monitor(world).run() if e.kind in ("outbid", "paused")]
    assert [(e.kind, e.order_id, e.details["reason"]) for e in events] == [
        ("paused", oid, "offline")
    ]


def _market(offers: list[SpotOffer], online: bool = True) -> SpotMarket:
    server = SpotServer(min_pricing={"bitcoin": 0.00005}, online=online)
    return SpotMarket(offers=offers, server=server)


@pytest.mark.parametrize(("online", "reason"), [(True, "rented on demand"), (False, "offline")])
def test_the_bid_decision_says_why_no_offer_runs(online: bool, reason: str) -> None:
    """No active offer at all: hold, because the server is rented on demand or offline."""
    market = _market([SpotOffer(offer_id=7, bid=0.0001, active=False, my=True)], online)
    decision = decide_bid(market, 7, 0.0001, "bitcoin", max_bid=0.001, now=START)
    assert (decision.action, decision.reason) == ("hold", reason)


def _keeper(world: World, oid: int, **kw: Any) -> SpotKeeper:
    options: dict[str, Any] = {"max_bid": 0.0005, "interval": 30.0, "until": START + 300, **kw}
    return SpotKeeper(world.scripted(), world.clock, oid, **options)


def test_an_order_ended_by_an_on_demand_renter_is_lost_to_that_renter(world: World) -> None:
    """On a host that ends paused offers, an on-demand renter ends our bid: the keeper's
    `lost` says so (not "ended", not outbid)."""
    world.sandbox.set_server(2, end_outbid=True)
    oid = _spot_order(world)
    world.at(40, lambda: world.rent(2, world.user("rival")))
    events = [e for e in _keeper(world, oid).run() if e.kind == "lost"]
    assert [(e.order_id, e.details["reason"]) for e in events] == [
        (oid, "lost to an on-demand renter")
    ]
    assert events[0].message == f"order {oid} lost to an on-demand renter; not recovering"


def test_an_order_ended_by_a_higher_bid_is_lost_as_outbid(world: World) -> None:
    """On such a host a higher spot bid ends ours: `lost` (outbid)."""
    world.sandbox.set_server(2, end_outbid=True)
    oid = _spot_order(world)
    world.at(40, lambda: world.bid(2, 0.001, world.user("rival")))
    events = [e for e in _keeper(world, oid, max_bid=0.0002).run() if e.kind == "lost"]
    assert [e.details["reason"] for e in events] == ["outbid"]


def test_an_order_cancelled_elsewhere_is_lost_as_ended(world: World) -> None:
    """Ended for another reason (cancelled in another session): `lost` (ended)."""
    oid = _spot_order(world)
    world.at(40, lambda: world.end(oid))
    events = [e for e in _keeper(world, oid).run() if e.kind == "lost"]
    assert [e.details["reason"] for e in events] == ["ended"]
