"""Unit tests of the watcher over a small in-process sandbox and a scripted clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wf_sandbox import START, Scripted, World, record, run_until

from clore._errors import APIConnectionError, AuthenticationError
from clore.workflows.plan import Limits, RentSpec
from clore.workflows.state import StateFile
from clore.workflows.watch import Watcher, WatchState

CAP = 0.0002
IMAGE = RentSpec(image="cloreai/ubuntu22.04-jupyter")


def server(sid: int, price: float) -> dict[str, Any]:
    """A 4090 at ``price`` BTC/day on demand, mrl 24 h."""
    return record(sid, price, mrl=24)


@pytest.fixture
def worlds(tmp_path: Path) -> Iterator[Any]:
    made: list[World] = []

    def make(servers: list[dict[str, Any]]) -> World:
        where = tmp_path / f"world-{len(made)}"
        where.mkdir()
        made.append(World(where, servers))
        return made[-1]

    yield make
    for world in made:
        world.close()


def make(worlds: Any, servers: list[dict[str, Any]], **kw: Any) -> tuple[World, Scripted, Watcher]:
    world = worlds(servers)
    client = world.scripted()
    options: dict[str, Any] = {"max_price": CAP, "interval": 10.0, **kw}
    return world, client, Watcher(client, world.clock, **options)


def sids(world: World) -> list[int]:
    """Servers of the demo user's orders, oldest first."""
    return [o.server_id for o in world.orders()]


def test_reports_matches_as_they_appear_and_disappear(worlds: Any) -> None:
    """Without a RentSpec, the watcher reports an offer as it matches and as it stops matching."""
    world, _client, watcher = make(worlds, [server(1, 0.0005)], until=START + 100)
    world.at(15, lambda: world.set_price(1, 0.0001))
    world.at(35, lambda: world.set_rented(1))
    kinds = [(e.kind, e.server_id) for e in watcher.run()]
    assert kinds == [("match", 1), ("unmatch", 1), ("done", None)]


def test_rents_the_cheapest_match_once_at_the_locked_price(worlds: Any) -> None:
    """The cheapest matching offer is rented once, with required_price equal to the price seen."""
    world, _client, watcher = make(
        worlds, [server(1, 0.00015), server(2, 0.0001), server(3, 0.0009)], rent=IMAGE
    )
    events = run_until(watcher.run(), "done")
    (create,) = world.wire.sent("create_order")
    assert (create.body["renting_server"], create.body["type"]) == (2, "on-demand")
    assert (create.body.get("spotprice"), create.body["required_price"]) == (None, 0.0001)
    assert [e.kind for e in events] == ["match", "match", "renting", "rented", "done"]
    assert events[3].order_id == world.orders()[0].id
    assert f"as order {events[3].order_id} " in events[3].message


def test_a_price_drop_is_rented_within_one_poll_interval(worlds: Any) -> None:
    """An offer that drops under the cap is rented no later than one interval after the drop."""
    world, client, watcher = make(worlds, [server(1, 0.0005)], rent=IMAGE)
    drop_at = world.clock.time() + 47.3
    world.clock.at(drop_at, lambda: world.set_price(1, 0.00012))
    run_until(watcher.run(), "done")
    (created_at,) = [t for t, name, _, _ in client.calls if name == "create_order"]
    assert 0 <= created_at - drop_at <= 10.0
    assert sids(world) == [1]


def test_a_lost_race_moves_on_to_the_next_candidate(worlds: Any) -> None:
    """server-already-rented on the best offer makes the watcher rent the next one instead."""
    world, _client, watcher = make(worlds, [server(1, 0.0001), server(2, 0.00015)], rent=IMAGE)
    world.wire.before("create_order", lambda: world.set_rented(1))  # a rival is faster
    events = run_until(watcher.run(), "done")
    assert [e.kind for e in events if e.kind in ("rent_skipped", "rented")] == [
        "rent_skipped",
        "rented",
    ]
    assert sids(world) == [2]


def test_a_server_claimed_across_the_fleet_moves_on_to_the_next(worlds: Any) -> None:
    """create_order gave up waiting for a server another machine of the fleet was renting
    (ServerClaimedError: nothing sent): the watcher moves on to the next candidate."""
    from clore.fleet import ServerClaimedError

    world, client, watcher = make(worlds, [server(1, 0.0001), server(2, 0.00015)], rent=IMAGE)
    claimed = ServerClaimedError("server 1 is claimed", server_id=1, holder="m2", waited=120.0)
    client.fail["create_order"] = [claimed]
    events = run_until(watcher.run(), "done")
    skipped = [e for e in events if e.kind == "rent_skipped"]
    assert [e.kind for e in events if e.kind in ("rent_skipped", "rented")] == [
        "rent_skipped",
        "rented",
    ]
    assert "server 1 not rented (server 1 is claimed)" in skipped[0].message
    assert sids(world) == [2]


def test_never_rents_more_than_count(worlds: Any) -> None:
    """With count=2 and three matches, exactly two orders are placed and the watch ends."""
    world, _client, watcher = make(
        worlds, [server(1, 0.0001), server(2, 0.0001), server(3, 0.0001)], rent=IMAGE, count=2
    )
    events = run_until(watcher.run(), "done")
    assert len(world.orders()) == 2
    assert {k: events[-1].details[k] for k in ("reason", "rentals")} == {
        "reason": "count",
        "rentals": 2,
    }


def test_never_rents_past_the_budget(worlds: Any) -> None:
    """Planned cost (price × max_time) beyond the remaining budget skips the offer."""
    # 0.0001/day for 12 h costs 0.00005; a budget of 0.00008 affords one rental only.
    world, _client, watcher = make(
        worlds,
        [server(1, 0.0001), server(2, 0.0001)],
        rent=IMAGE,
        count=5,
        budget=0.00008,
        limits=Limits(max_time=12 * 3600),
        until=START + 30,
    )
    events = list(watcher.run())
    assert len(world.orders()) == 1
    assert "over_budget" in [e.kind for e in events]
    assert pytest.approx(0.00005) == events[-1].details["committed"]


def test_a_restarted_watcher_does_not_rent_twice(worlds: Any, tmp_path: Path) -> None:
    """A watcher killed right after create_order leaves an intent that its successor reconciles."""
    state = StateFile(tmp_path / "w.json")
    world, client, first = make(
        worlds, [server(1, 0.0001), server(2, 0.0001)], rent=IMAGE, state=state
    )

    def interrupt(_order: object) -> None:
        raise KeyboardInterrupt

    client.after["create_order"] = interrupt
    with pytest.raises(KeyboardInterrupt):
        run_until(first.run(), "done")
    assert (state.read(WatchState) or WatchState()).rentals[0].status == "pending"
    second = Watcher(world.scripted(), world.clock, max_price=CAP, rent=IMAGE, state=state)
    events = run_until(second.run(), "done")
    assert len(world.orders()) == 1
    assert [e.kind for e in events] == ["rented", "done"]


def test_an_unconfirmed_create_is_reconciled_not_repeated(worlds: Any) -> None:
    """A create_order that fails after committing is settled via my_orders, not retried."""
    world, client, watcher = make(worlds, [server(1, 0.0001), server(2, 0.0001)], rent=IMAGE)

    def drop(_order: object) -> None:
        raise APIConnectionError("connection reset")

    client.after["create_order"] = drop
    events = run_until(watcher.run(), "done")
    assert len(world.orders()) == 1 and client.count("create_order") == 1
    assert [e.kind for e in events if e.kind not in ("match", "unmatch")] == [
        "renting",
        "error",
        "rented",
        "done",
    ]


def test_a_may_exist_error_stops_renting_until_my_orders_settles_it(worlds: Any) -> None:
    """OrderUnconfirmedError (the order may exist) is never 'try the next server': the watch
    rents nothing else, says the server may have been rented, and adopts the order."""
    world, client, watcher = make(worlds, [server(1, 0.0001), server(2, 0.00012)], rent=IMAGE)
    # The first send lands 40 s late (after the SDK's checks, within the watch's 60 s grace);
    # the SDK's resend meets only 429s: "may exist".
    world.sandbox.inject_fault("create_order", "late_commit", seconds=40)
    world.sandbox.inject_fault("create_order", "rate_limit", count=4)
    events = run_until(watcher.run(), "done")
    assert sids(world) == [1]
    assert client.count("create_order") == 1
    (error,) = [e for e in events if e.kind == "error"]
    assert "server 1 may have been rented" in error.message
    assert "renting nothing else until my_orders shows whether it was" in error.message
    assert [e.kind for e in events if e.kind not in ("match", "unmatch")][-2:] == [
        "rented",
        "done",
    ]


def test_poll_errors_are_retried_with_backoff(worlds: Any) -> None:
    """A failing marketplace call yields an error event and the next poll waits longer."""
    world, _client, watcher = make(worlds, [server(1, 0.0001)], rent=IMAGE)
    world.sandbox.inject_fault("marketplace", "db_error", count=8)  # two polls, 4 tries each
    events = run_until(watcher.run(), "done")
    errors = [e for e in events if e.kind == "error"]
    assert [e.details["retry_in"] for e in errors] == [10.0, 20.0]
    assert len(world.orders()) == 1


def test_authentication_errors_end_the_watch(worlds: Any) -> None:
    """A bad key is not retried: the error propagates out of the loop."""
    world = worlds([server(1, 0.0001)])
    client = world.scripted("f" * 32)
    watcher = Watcher(client, world.clock, max_price=CAP, interval=10.0, rent=IMAGE)
    with pytest.raises(AuthenticationError):
        list(watcher.run())
    assert [s.status for s in world.wire.seen if s.endpoint != "marketplace"] == [401]


def test_a_dry_run_rents_nothing(worlds: Any) -> None:
    """--dry-run reports what it would rent, up to count, without calling create_order."""
    world, client, watcher = make(worlds, [server(1, 0.0001)], rent=IMAGE, dry_run=True)
    events = run_until(watcher.run(), "done")
    assert client.count("create_order") == 0 and world.wire.sent("create_order") == []
    assert [e.details["dry_run"] for e in events if e.kind == "renting"] == [True]


def test_max_time_cancels_the_rented_order_before_it_is_crossed(worlds: Any) -> None:
    """With --max-time the watcher guards its order and cancels it within a poll of the limit."""
    world, _client, watcher = make(
        worlds, [server(1, 0.0001)], rent=IMAGE, limits=Limits(max_time=600)
    )
    events = run_until(watcher.run(), "done")
    cancelled = [e for e in events if e.kind == "guard_cancelled"]
    assert len(cancelled) == 1
    (order,) = world.orders()
    assert order.ended
    age = cancelled[0].at - order.ct
    assert 590 <= age <= 600


def test_two_watchers_sharing_a_state_file_rent_once(worlds: Any, tmp_path: Path) -> None:
    """Two watchers of the same watch (one state file) together rent no more than count."""
    state = StateFile(tmp_path / "w.json")
    world = worlds([server(1, 0.0001), server(2, 0.0001)])
    a = Watcher(world.scripted(), world.clock, max_price=CAP, rent=IMAGE, state=state).run()
    b = Watcher(world.scripted(), world.clock, max_price=CAP, rent=IMAGE, state=state).run()
    kinds_a = [e.kind for e in run_until(a, "done")]
    kinds_b = [e.kind for e in run_until(b, "done")]
    assert len(world.orders()) == 1
    assert "rented" in kinds_a
    assert kinds_b == ["done"]


def test_messages_write_amounts_with_the_currency_digits_and_human_durations(
    worlds: Any,
) -> None:
    """A USD watch says 0.500 USD/day (3 significant digits), a BTC one 0.0001000 BTC/day;
    a retry note is a human duration."""
    usd = record(1, 0.0001)
    usd["price"]["on_demand"]["USD-Blockchain"] = 0.5
    usd["allowed_coins"] = ["bitcoin", "USD-Blockchain"]
    _world, _client, watcher = make(
        worlds, [usd], max_price=1.0, currency="USD-Blockchain", until=START + 5
    )
    (match,) = [e for e in watcher.run() if e.kind == "match"]
    assert match.message == "server 1 matches at 0.500 USD/day"
    world, _client, watcher = make(worlds, [server(1, 0.0001)], rent=IMAGE)
    world.sandbox.inject_fault("marketplace", "db_error", count=4)
    events = run_until(watcher.run(), "done")
    (error,) = [e for e in events if e.kind == "error"]
    assert error.message.endswith("; retrying in 10 s")
    (rented,) = [e for e in events if e.kind == "rented"]
    assert " at 0.0001000 BTC/day (1/1)" in rented.message
