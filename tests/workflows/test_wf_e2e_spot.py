"""End to end against the in-process sandbox: the spot keeper rebids, walks down, recovers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wf_sandbox import DEFAULT_SERVERS, World, record, run_until

from clore.workflows import Limits, RentSpec, SpotKeeper, StateFile

CAP = 0.00015
PASSWORD = "abc123"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def bid_on(world: World, client: Any, sid: int, price: float) -> Any:
    return client.create_order(
        sid, "img", order_type="spot", spotprice=price, ssh_password=PASSWORD, env={"A": "1"}
    )


def rival(world: World) -> Any:
    key, _ = world.sandbox.create_user("rival", {"bitcoin": 1.0})
    return world.client(key)


def offers(world: World, sid: int) -> dict[int, tuple[float, bool]]:
    market = world.client().spot_marketplace(sid)
    return {o.offer_id: (float(o.bid), o.active) for o in market.offers}


def test_an_outbid_order_is_rebid_within_the_cap(world: World) -> None:
    """A rival bids 0.00012: we go to 0.0001212 (1% above), win again, and never pass the cap."""
    ours = bid_on(world, world.client(), 11, 0.0001)
    other = rival(world)
    world.at(20, lambda: bid_on(world, other, 11, 0.00012))
    keeper = SpotKeeper(world.client(), world.clock, ours.id, max_bid=CAP, interval=15,
                        until=world.clock.time() + 90)  # fmt: skip
    events = [e for e in keeper.run() if e.kind == "bid_raised"]
    assert [e.details["new"] for e in events] == [0.0001212]
    assert offers(world, 11)[ours.id] == (0.0001212, True)


def test_a_lone_bid_walks_down_to_the_minimum_within_the_api_rules(world: World) -> None:
    """Alone on server 11 (minimum 0.00005), the bid steps down 10% per 600 s, no refusal."""
    ours = bid_on(world, world.client(), 11, 0.0001)
    keeper = SpotKeeper(world.client(), world.clock, ours.id, max_bid=CAP, interval=60,
                        until=world.clock.time() + 3 * 3600)  # fmt: skip
    events = list(keeper.run())
    lowered = [e for e in events if e.kind == "bid_lowered"]
    assert offers(world, 11)[ours.id] == (0.00005, True)
    assert len(lowered) == 7
    assert all(b.at - a.at >= 600 for a, b in itertools.pairwise(lowered))
    assert [e for e in events if e.kind == "error"] == []


def test_cap_exceeded_recovers_on_another_server_with_the_same_setup(world: World) -> None:
    """A rival far above the cap: our offer is cancelled and a bid placed on server 12."""
    ours = bid_on(world, world.client(), 11, 0.0001)
    other = rival(world)
    world.at(20, lambda: bid_on(world, other, 11, 0.0009))
    rent = RentSpec(image="img", order_type="spot", env={"A": "1"}, ssh_password=PASSWORD)
    keeper = SpotKeeper(world.client(), world.clock, ours.id, max_bid=CAP, interval=15,
                        recover=True, rent=rent)  # fmt: skip
    events = run_until(keeper.run(), "recovered")
    # Alone at first, the keeper also starts walking the bid down; only the recovery matters.
    steps = ("cap_exceeded", "recovering", "recovered")
    assert [e.kind for e in events if e.kind in steps] == list(steps)
    new = world.client().get_order(events[-1].order_id)
    assert (new.si, new.spot, new.image, float(new.price)) == (12, True, "img", 0.00006)
    assert world.client().get_order(ours.id).expired


def test_a_lost_order_is_recovered(world: World, tmp_path: Path) -> None:
    """Our spot order ends (host takes the server away); the keeper rents server 12 instead."""
    ours = bid_on(world, world.client(), 11, 0.0001)
    world.at(40, lambda: world.sandbox.set_server(11, online=False))
    world.at(41, lambda: world.client().cancel_order(ours.id))
    rent = RentSpec(image="img", order_type="spot", ssh_password=PASSWORD)
    state = StateFile(tmp_path / "keep.json")
    keeper = SpotKeeper(world.client(), world.clock, ours.id, max_bid=CAP, interval=30,
                        recover=True, rent=rent, state=state)  # fmt: skip
    events = run_until(keeper.run(), "recovered")
    assert [e.kind for e in events if e.kind != "bid_lowered"][-3:] == [
        "lost",
        "recovering",
        "recovered",
    ]
    lost = next(e for e in events if e.kind == "lost")
    assert lost.details["reason"] == "ended"  # cancelled days before ct + mrl: not "expired"
    assert world.client().get_order(events[-1].order_id).si == 12
    saved = state.read(type(keeper.state))
    assert saved is not None and saved.order_id == events[-1].order_id


def test_max_spend_ends_the_kept_order(world: World) -> None:
    """--max-spend on the keeper cancels the order before its spend passes the limit."""
    ours = bid_on(world, world.client(), 11, 0.0001)
    limit = 0.0001 / 24  # one hour at the starting bid
    keeper = SpotKeeper(world.client(), world.clock, ours.id, max_bid=CAP, interval=60,
                        limits=Limits(max_spend=limit))  # fmt: skip
    events = list(keeper.run())
    assert events[-1].kind == "guard_cancelled"
    final = world.client().get_order(ours.id)
    assert final.expired and float(final.spend) <= limit


def test_recovery_reuses_the_ports_my_orders_shows(world: World) -> None:
    """Without a RentSpec the replacement forwards the lost order's ports, read from
    tcp_ports and http_port (my_orders has no `ports` field)."""
    ports = {"22": "tcp", "8888": "http"}
    ours = world.client().create_order(11, "img", order_type="spot", spotprice=0.0001,
                                       ports=ports, ssh_password=PASSWORD)  # fmt: skip
    other = rival(world)
    world.at(120, lambda: bid_on(world, other, 11, 0.0009))
    keeper = SpotKeeper(world.client(), world.clock, ours.id, max_bid=CAP, interval=15,
                        recover=True)  # fmt: skip
    events = run_until(keeper.run(), "recovered")
    new = world.client().wait_for_order(events[-1].order_id)
    assert new.si == 12
    assert (sorted(new.port_map), str(new.http_port)) == ([22], "8888")


def test_a_recovery_bid_committed_late_leaves_exactly_one_live_offer(tmp_path: Path) -> None:
    """Outbid past the cap, the keeper bids on server 12, whose first send reaches the sandbox
    only after the SDK gave up: it adopts that offer and bids on no other server."""
    world = World(tmp_path, servers=[*DEFAULT_SERVERS, record(14, 0.0004, 0.00007)])
    try:
        ours = bid_on(world, world.client(), 11, 0.0001)
        other = rival(world)

        def outbid() -> None:
            bid_on(world, other, 11, 0.0009)
            # The keeper's recovery bid then reaches the sandbox 30 s late: after the SDK's
            # checks gave up on it (about 15 s), before the keeper's next look.
            world.sandbox.inject_fault("create_order", "late_commit", seconds=30)

        world.at(20, outbid)
        client = world.client()
        rent = RentSpec(image="img", order_type="spot", ssh_password=PASSWORD)
        keeper = SpotKeeper(client, world.clock, ours.id, max_bid=CAP, interval=15,
                            recover=True, rent=rent)  # fmt: skip
        events = run_until(keeper.run(), "recovered")
        ours_sent = [
            s for s in world.wire.sent("create_order")
            if s.headers.get("auth") == world.sandbox.demo_key
        ]  # fmt: skip
        assert [s.body["renting_server"] for s in ours_sent] == [11, 12]  # one recovery bid
        (doubt,) = [e for e in events if e.kind == "error"]
        assert "may have been placed" in doubt.message  # the SDK gave up on it first
        live = [(o.si, o.spot) for o in world.client().my_orders() if not o.expired]
        assert live == [(12, True)]
        assert keeper.state.order_id == world.client().my_orders()[-1].id
        assert [e.kind for e in events].count("recovering") == 1
    finally:
        world.close()
