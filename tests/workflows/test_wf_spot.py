"""Unit tests of the spot bidding rules and of the keeper loop over the fake client."""

from __future__ import annotations

import itertools

from wf_fakes import FakeClient, ScriptedClock, run_until, server

from clore._errors import OrderUnconfirmedError
from clore._wire import SpotMarket, SpotOffer, SpotServer
from clore.workflows.plan import Limits, RentSpec
from clore.workflows.spot_bids import decide_bid
from clore.workflows.spot_keeper import SpotKeeper

NOW = 1_700_000_000.0
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


def keeper_setup(**kw: object) -> tuple[ScriptedClock, FakeClient, int, SpotKeeper]:
    clock = ScriptedClock(NOW)
    client = FakeClient(
        clock,
        [
            server(1, 0.0004, spot=0.00005),
            server(2, 0.0004, spot=0.00006),
            server(3, 0.0004, spot=0.00004, gpu="1x NVIDIA GeForce RTX 3090"),
        ],
    )
    order = client.create_order(1, "img", order_type="spot", spotprice=0.0001, env={"A": "1"})
    options: dict = {"max_bid": 0.0002, "interval": 30.0, **kw}
    return clock, client, order.id, SpotKeeper(client, clock, order.id, **options)


def test_keeper_rebids_within_the_cap_when_outbid() -> None:
    """An outbid order gets a bid just above the winner, and the keeper then holds."""
    _clock, client, oid, keeper = keeper_setup(until=NOW + 120)
    client.offers[1] = [{"offer_id": 9, "bid": 0.00015}]
    events = [e for e in keeper.run() if e.kind.startswith("bid")]
    assert [(e.kind, e.details["new"]) for e in events] == [("bid_raised", 0.0001515)]
    assert client.orders[oid]["price"] == 0.0001515
    assert "-> 0.0001515 BTC/day" in events[0].message  # prices say currency and period


def test_keeper_walks_a_lone_bid_down_once_per_600_seconds() -> None:
    """Alone, the bid drops 10% per step, 600 s apart at least, down to the minimum."""
    _clock, client, oid, keeper = keeper_setup(until=NOW + 6 * 3600)
    events = [e for e in keeper.run() if e.kind == "bid_lowered"]
    times = [e.at for e in events]
    assert all(b - a >= 600 for a, b in itertools.pairwise(times))
    assert all(e.details["new"] >= 0.9 * e.details["old"] - 1e-12 for e in events)
    assert client.orders[oid]["price"] == 0.00005
    assert len(events) == 7


def test_cap_exceeded_without_recover_waits_and_reports_once() -> None:
    """Outbid beyond the cap, the keeper reports cap_exceeded once and leaves the offer listed."""
    _clock, client, oid, keeper = keeper_setup(until=NOW + 300)
    client.offers[1] = [{"offer_id": 9, "bid": 0.0005}]
    events = [e.kind for e in keeper.run()]
    assert events == ["cap_exceeded"]
    assert not client.orders[oid]["expired"]


def test_cap_exceeded_with_recover_moves_to_the_next_cheapest_matching_server() -> None:
    """With recover, the outbid offer is cancelled and the same image/env bid on another 4090."""
    rent = RentSpec(image="img", order_type="spot", env={"A": "1"})
    _clock, client, oid, keeper = keeper_setup(recover=True, rent=rent, until=NOW + 100)
    client.offers[1] = [{"offer_id": 9, "bid": 0.0005}]
    events = run_until(keeper.run(), "recovered")
    assert [e.kind for e in events] == ["cap_exceeded", "recovering", "recovered"]
    assert client.orders[oid]["expired"]
    new = client.orders[events[-1].order_id]
    assert (new["si"], new["spot"], new["env"], new["price"]) == (2, True, {"A": "1"}, 0.00006)


def test_a_lost_order_is_recovered_and_kept() -> None:
    """An order that disappears is replaced, and the keeper goes on keeping the new order."""
    clock, client, oid, keeper = keeper_setup(recover=True, until=NOW + 100)
    clock.after(40, lambda: client.end_order(oid))
    events = run_until(keeper.run(), "recovered")
    steps = [e.kind for e in events if e.kind in ("lost", "recovering", "recovered")]
    assert steps == ["lost", "recovering", "recovered"]
    assert keeper.state.order_id == events[-1].order_id


def test_keeper_cancels_at_max_spend() -> None:
    """--max-spend cancels the kept order before its spend crosses the limit."""
    _clock, client, oid, keeper = keeper_setup(limits=Limits(max_spend=0.00002), until=NOW + 86400)
    events = list(keeper.run())
    assert events[-1].kind == "guard_cancelled"
    assert client.orders[oid]["expired"]
    assert client.orders[oid]["spend_before"] <= 0.00002


def test_a_lost_order_ends_the_keeper_without_recover() -> None:
    """Without recover, losing the order ends the loop with a 'lost' event."""
    clock, client, oid, keeper = keeper_setup()
    clock.after(40, lambda: client.end_order(oid))
    events = list(keeper.run())
    assert events[-1].kind == "lost"


def test_keeper_limits_are_registered_and_its_cancel_is_logged() -> None:
    """spot keep --max-spend registers the limit for `clore guard` and logs its cancel."""
    import json

    from clore._paths import data_dir
    from clore.workflows import registered_limits

    _clock, _client, oid, keeper = keeper_setup(limits=Limits(max_spend=0.00002), until=NOW + 60)
    list(keeper.run())
    assert registered_limits().get(oid) == Limits(max_spend=0.00002)
    keeper.until = NOW + 86400
    events = list(keeper.run())
    assert events[-1].kind == "guard_cancelled"
    (line,) = (data_dir() / "workflows" / "guard.log").read_text().splitlines()
    assert (json.loads(line)["order_id"], json.loads(line)["source"]) == (oid, "spot")


def test_a_recovery_bid_that_may_exist_is_adopted_not_placed_elsewhere() -> None:
    """A recovery bid answered 'may exist' (OrderUnconfirmedError, the offer in fact placed)
    stops the recovery: no bid on the next server; the next poll adopts the offer."""
    clock, client, oid, keeper = keeper_setup(recover=True, until=NOW + 300)
    clock.after(40, lambda: client.end_order(oid))
    doubts = [OrderUnconfirmedError("create_order on server 1: ...: the order may exist")]

    def answer_lost(_order: object) -> None:
        if doubts:
            raise doubts.pop()

    client.after_create = answer_lost
    events = run_until(keeper.run(), "recovered")
    live = [(o["si"], o["spot"]) for o in client.orders.values() if not o["expired"]]
    assert live == [(1, True)]
    assert [e.kind for e in events if e.kind != "bid_lowered"][-4:] == [
        "lost",
        "recovering",
        "error",
        "recovered",
    ]
    error = next(e for e in events if e.kind == "error")
    assert "server 1 may have been placed" in error.message
    assert keeper.state.order_id == events[-1].order_id
