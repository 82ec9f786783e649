"""Unit tests of the spot bidding rules, and of the keeper loop over a small sandbox."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wf_sandbox import GPU_3090, START, Scripted, World, record, run_until

from clore._wire import SpotMarket, SpotOffer, SpotServer
from clore.workflows.plan import Limits, RentSpec
from clore.workflows.spot_bids import decide_bid
from clore.workflows.spot_keeper import SpotKeeper

NOW = START
ME = 7


def market(*offers: tuple[int, float, bool], minimum: float = 0.00005) -> SpotMarket:
    return SpotMarket(
        offers=[SpotOffer(offer_id=i, bid=b, active=a, my=i == ME) for i, b, a in offers],
        server=SpotServer(min_pricing={"bitcoin": minimum}),
    )


def decide(m: SpotMarket, bid: float, **kw: object) -> tuple[str, float | None]:
    """(action, price) of the decision for our offer ME bidding ``bid``."""
    options: dict = {"max_bid": 0.001, "now": NOW, **kw}
    d = decide_bid(m, ME, bid, "bitcoin", **options)
    return d.action, d.wait if d.action == "wait" else d.price


def test_outbid_rebids_one_percent_above_the_winner() -> None:
    """When outbid the new bid is the winning bid plus 1% (rounded up to 8 decimals)."""
    assert decide(market((ME, 0.0001, False), (8, 0.0002, True)), 0.0001) == ("raise", 0.000202)


def test_outbid_never_bids_above_the_cap() -> None:
    """A cap between winner and winner+step bids the cap; a cap at the winner gives up."""
    m = market((ME, 0.0001, False), (8, 0.0002, True))
    assert decide(m, 0.0001, max_bid=0.0002015) == ("raise", 0.0002015)
    assert decide(m, 0.0001, max_bid=0.0002)[0] == "cap_exceeded"


def test_alone_lowers_by_at_most_the_max_step_towards_the_minimum() -> None:
    """A lone winning bid is lowered by 10% at a time, never below the server minimum."""
    assert decide(market((ME, 0.0001, True)), 0.0001) == ("lower", 0.00009)
    assert decide(market((ME, 0.000052, True)), 0.000052) == ("lower", 0.00005)


def test_lowering_stays_above_a_lower_competing_bid() -> None:
    """With a lower competitor, the floor is that bid plus one step."""
    m = market((ME, 0.0001, True), (8, 0.000095, False))
    assert decide(m, 0.0001) == ("lower", 0.00009595)


def test_lowering_waits_for_the_600_second_rule() -> None:
    """Within 600 s of the last lowering the decision is to wait for the remaining time."""
    assert decide(market((ME, 0.0001, True)), 0.0001, last_lower_at=NOW - 200) == ("wait", 400)


def test_nobody_active_means_hold() -> None:
    """With no active offer (server rented on demand or offline) the bid is left alone."""
    assert decide(market((ME, 0.0001, False)), 0.0001) == ("hold", None)


# ---- the keeper loop ---------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(
        tmp_path,
        [
            record(1, 0.0004, 0.00005, mrl=24),
            record(2, 0.0004, 0.00006, mrl=24),
            record(3, 0.0004, 0.00004, GPU_3090, mrl=24),
        ],
    )
    yield w
    w.close()


def keeper_setup(world: World, **kw: Any) -> tuple[Scripted, int, SpotKeeper]:
    client = world.scripted()
    order = client.create_order(1, "img", order_type="spot", spotprice=0.0001, env={"A": "1"})
    options: dict[str, Any] = {"max_bid": 0.0002, "interval": 30.0, **kw}
    return client, order.id, SpotKeeper(client, world.clock, order.id, **options)


def test_keeper_rebids_within_the_cap_when_outbid(world: World) -> None:
    """An outbid order gets a bid just above the winner, and the keeper then holds."""
    _client, oid, keeper = keeper_setup(world, until=NOW + 120)
    world.bid(1, 0.00015, world.user("rival"))
    events = [e for e in keeper.run() if e.kind.startswith("bid")]
    assert [(e.kind, e.details["new"]) for e in events] == [("bid_raised", 0.0001515)]
    assert world.order(oid).price == 0.0001515
    assert "-> 0.0001515 BTC/day" in events[0].message  # prices say currency and period


def test_keeper_walks_a_lone_bid_down_once_per_600_seconds(world: World) -> None:
    """Alone, the bid drops 10% per step, 600 s apart at least, down to the minimum."""
    _client, oid, keeper = keeper_setup(world, until=NOW + 6 * 3600)
    events = [e for e in keeper.run() if e.kind == "bid_lowered"]
    times = [e.at for e in events]
    assert all(b - a >= 600 for a, b in itertools.pairwise(times))
    assert all(e.details["new"] >= 0.9 * e.details["old"] - 1e-12 for e in events)
    assert world.order(oid).price == 0.00005
    assert len(events) == 7
    assert all(s.code == 0 for s in world.wire.sent("set_spot_price"))  # none refused


def test_cap_exceeded_without_recover_waits_and_reports_once(world: World) -> None:
    """Outbid beyond the cap, the keeper reports cap_exceeded once and leaves the offer listed."""
    _client, oid, keeper = keeper_setup(world, until=NOW + 300)
    world.bid(1, 0.0005, world.user("rival"))
    events = [e.kind for e in keeper.run()]
    assert events == ["cap_exceeded"]
    assert not world.order(oid).ended


def test_cap_exceeded_with_recover_moves_to_the_next_cheapest_matching_server(
    world: World,
) -> None:
    """With recover, the outbid offer is cancelled and the same image/env bid on another 4090."""
    rent = RentSpec(image="img", order_type="spot", env={"A": "1"})
    _client, oid, keeper = keeper_setup(world, recover=True, rent=rent, until=NOW + 100)
    world.bid(1, 0.0005, world.user("rival"))
    events = run_until(keeper.run(), "recovered")
    assert [e.kind for e in events] == ["cap_exceeded", "recovering", "recovered"]
    assert world.order(oid).ended
    new = world.order(events[-1].order_id)
    assert (new.server_id, new.spot, new.price) == (2, True, 0.00006)
    assert world.wire.sent("create_order")[-1].body["env"] == {"A": "1"}


def test_a_lost_order_is_recovered_and_kept(world: World) -> None:
    """An order that disappears is replaced, and the keeper goes on keeping the new order."""
    _client, oid, keeper = keeper_setup(world, recover=True, until=NOW + 100)
    world.at(40, lambda: world.end(oid))
    events = run_until(keeper.run(), "recovered")
    steps = [e.kind for e in events if e.kind in ("lost", "recovering", "recovered")]
    assert steps == ["lost", "recovering", "recovered"]
    assert keeper.state.order_id == events[-1].order_id
    assert not world.order(events[-1].order_id).ended


def test_keeper_cancels_at_max_spend(world: World) -> None:
    """--max-spend cancels the kept order before its spend crosses the limit."""
    # Polls every 5 min: the limit is reached after hours, and a poll's lookahead still holds.
    _client, oid, keeper = keeper_setup(
        world, limits=Limits(max_spend=0.00002), until=NOW + 86400, interval=300.0
    )
    events = list(keeper.run())
    assert events[-1].kind == "guard_cancelled"
    assert world.order(oid).ended
    assert 0 < world.order(oid).spend <= 0.00002


def test_a_lost_order_ends_the_keeper_without_recover(world: World) -> None:
    """Without recover, losing the order ends the loop with a 'lost' event."""
    _client, oid, keeper = keeper_setup(world)
    world.at(40, lambda: world.end(oid))
    events = list(keeper.run())
    assert events[-1].kind == "lost"


def test_keeper_limits_are_registered_and_its_cancel_is_logged(world: World) -> None:
    """spot keep --max-spend registers the limit for `clore guard` and logs its cancel."""
    import json

    from clore._paths import data_dir
    from clore.workflows import registered_limits

    _client, oid, keeper = keeper_setup(
        world, limits=Limits(max_spend=0.00002), until=NOW + 60, interval=300.0
    )
    list(keeper.run())
    assert registered_limits().get(oid) == Limits(max_spend=0.00002)
    keeper.until = NOW + 86400
    events = list(keeper.run())
    assert events[-1].kind == "guard_cancelled"
    (line,) = (data_dir() / "workflows" / "guard.log").read_text().splitlines()
    assert (json.loads(line)["order_id"], json.loads(line)["source"]) == (oid, "spot")


def test_a_recovery_bid_that_may_exist_is_adopted_not_placed_elsewhere(world: World) -> None:
    """A recovery bid answered 'may exist' (OrderUnconfirmedError, the offer in fact placed)
    stops the recovery: no bid on the next server; the next poll adopts the offer."""
    client, oid, keeper = keeper_setup(world, recover=True, until=NOW + 300)
    world.at(40, lambda: world.end(oid))
    # The recovery bid reaches the sandbox 20 s late: after the SDK's checks, before the
    # keeper's next poll.
    world.sandbox.inject_fault("create_order", "late_commit", seconds=20)
    events = run_until(keeper.run(), "recovered")
    live = [(o.server_id, o.spot) for o in world.orders() if not o.ended]
    assert live == [(1, True)]
    assert client.count("create_order") == 2  # the first bid, and one recovery bid
    assert [e.kind for e in events if e.kind != "bid_lowered"][-4:] == [
        "lost",
        "recovering",
        "error",
        "recovered",
    ]
    error = next(e for e in events if e.kind == "error")
    assert "server 1 may have been placed" in error.message
    assert keeper.state.order_id == events[-1].order_id
