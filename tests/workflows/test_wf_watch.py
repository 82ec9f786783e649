"""Unit tests of the watcher over the in-memory fake client and a scripted clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from wf_fakes import FakeClient, ScriptedClock, run_until, server

from clore._errors import (
    APIConnectionError,
    AuthenticationError,
    DatabaseError,
    OrderUnconfirmedError,
    ServerAlreadyRentedError,
)
from clore.workflows.plan import Limits, RentSpec
from clore.workflows.state import StateFile
from clore.workflows.watch import Watcher, WatchState

CAP = 0.0002
IMAGE = RentSpec(image="cloreai/ubuntu22.04-jupyter")


def make(servers: list, **kw: object) -> tuple[ScriptedClock, FakeClient, Watcher]:
    clock = ScriptedClock()
    client = FakeClient(clock, servers)
    options: dict = {"max_price": CAP, "interval": 10.0, **kw}
    return clock, client, Watcher(client, clock, **options)


def test_reports_matches_as_they_appear_and_disappear() -> None:
    """Without a RentSpec, the watcher reports an offer as it matches and as it stops matching."""
    clock, client, watcher = make([server(1, 0.0005)], until=1_700_000_100.0)
    clock.after(15, lambda: client.set_price(1, 0.0001))
    clock.after(35, lambda: client.set_rented(1))
    kinds = [(e.kind, e.server_id) for e in watcher.run()]
    assert kinds == [("match", 1), ("unmatch", 1), ("done", None)]


def test_rents_the_cheapest_match_once_at_the_locked_price() -> None:
    """The cheapest matching offer is rented once, with required_price equal to the price seen."""
    _clock, client, watcher = make(
        [server(1, 0.00015), server(2, 0.0001), server(3, 0.0009)], rent=IMAGE
    )
    events = run_until(watcher.run(), "done")
    creates = [args for _, name, args in client.calls if name == "create_order"]
    assert [args[:4] for args in creates] == [(2, "on-demand", None, 0.0001)]
    assert [e.kind for e in events] == ["match", "match", "renting", "rented", "done"]
    assert events[3].order_id is not None
    assert f"as order {events[3].order_id} " in events[3].message


def test_a_price_drop_is_rented_within_one_poll_interval() -> None:
    """An offer that drops under the cap is rented no later than one interval after the drop."""
    clock, client, watcher = make([server(1, 0.0005)], rent=IMAGE)
    drop_at = clock.time() + 47.3
    clock.at(drop_at, lambda: client.set_price(1, 0.00012))
    run_until(watcher.run(), "done")
    (created_at,) = [t for t, name, _ in client.calls if name == "create_order"]
    assert 0 <= created_at - drop_at <= 10.0


def test_a_lost_race_moves_on_to_the_next_candidate() -> None:
    """server-already-rented on the best offer makes the watcher rent the next one instead."""
    _clock, client, watcher = make([server(1, 0.0001), server(2, 0.00015)], rent=IMAGE)
    client.fail["create_order"] = [ServerAlreadyRentedError(6, "server-already-rented")]
    events = run_until(watcher.run(), "done")
    assert [e.kind for e in events if e.kind in ("rent_skipped", "rented")] == [
        "rent_skipped",
        "rented",
    ]
    assert [o["si"] for o in client.orders.values()] == [2]


def test_never_rents_more_than_count() -> None:
    """With count=2 and three matches, exactly two orders are placed and the watch ends."""
    _clock, client, watcher = make(
        [server(1, 0.0001), server(2, 0.0001), server(3, 0.0001)], rent=IMAGE, count=2
    )
    events = run_until(watcher.run(), "done")
    assert len(client.orders) == 2
    assert {k: events[-1].details[k] for k in ("reason", "rentals")} == {
        "reason": "count",
        "rentals": 2,
    }


def test_never_rents_past_the_budget() -> None:
    """Planned cost (price × max_time) beyond the remaining budget skips the offer."""
    # 0.0001/day for 12 h costs 0.00005; a budget of 0.00008 affords one rental only.
    _clock, client, watcher = make(
        [server(1, 0.0001), server(2, 0.0001)],
        rent=IMAGE,
        count=5,
        budget=0.00008,
        limits=Limits(max_time=12 * 3600),
        until=1_700_000_030.0,
    )
    events = list(watcher.run())
    assert len(client.orders) == 1
    assert "over_budget" in [e.kind for e in events]
    assert pytest.approx(0.00005) == events[-1].details["committed"]


def test_a_restarted_watcher_does_not_rent_twice(tmp_path: Path) -> None:
    """A watcher killed right after create_order leaves an intent that its successor reconciles."""
    state = StateFile(tmp_path / "w.json")
    clock, client, first = make([server(1, 0.0001), server(2, 0.0001)], rent=IMAGE, state=state)

    def interrupt(_order: object) -> None:
        raise KeyboardInterrupt

    client.after_create = interrupt
    with pytest.raises(KeyboardInterrupt):
        run_until(first.run(), "done")
    assert (state.read(WatchState) or WatchState()).rentals[0].status == "pending"
    client.after_create = None
    second = Watcher(client, clock, max_price=CAP, rent=IMAGE, state=state)
    events = run_until(second.run(), "done")
    assert len(client.orders) == 1
    assert [e.kind for e in events] == ["rented", "done"]


def test_an_unconfirmed_create_is_reconciled_not_repeated() -> None:
    """A create_order that fails after committing is settled via my_orders, not retried."""
    _clock, client, watcher = make([server(1, 0.0001), server(2, 0.0001)], rent=IMAGE)

    def drop(_order: object) -> None:
        raise APIConnectionError("connection reset")

    client.after_create = drop
    events = run_until(watcher.run(), "done")
    assert len(client.orders) == 1
    assert [e.kind for e in events if e.kind not in ("match", "unmatch")] == [
        "renting",
        "error",
        "rented",
        "done",
    ]


def test_a_may_exist_error_stops_renting_until_my_orders_settles_it() -> None:
    """OrderUnconfirmedError (the order may exist) is never 'try the next server': the watch
    rents nothing else, says the server may have been rented, and adopts the order."""
    _clock, client, watcher = make([server(1, 0.0001), server(2, 0.00012)], rent=IMAGE)

    def lost(_order: object) -> None:
        raise OrderUnconfirmedError("create_order on server 1: ...: the order may exist")

    client.after_create = lost
    events = run_until(watcher.run(), "done")
    assert [o["si"] for o in client.orders.values()] == [1]
    assert client.count("create_order") == 1
    (error,) = [e for e in events if e.kind == "error"]
    assert "server 1 may have been rented" in error.message
    assert "renting nothing else until my_orders shows whether it was" in error.message
    assert [e.kind for e in events if e.kind not in ("match", "unmatch")][-2:] == [
        "rented",
        "done",
    ]


def test_poll_errors_are_retried_with_backoff() -> None:
    """A failing marketplace call yields an error event and the next poll waits longer."""
    _clock, client, watcher = make([server(1, 0.0001)], rent=IMAGE)
    client.fail["marketplace"] = [DatabaseError(1), DatabaseError(1)]
    events = run_until(watcher.run(), "done")
    errors = [e for e in events if e.kind == "error"]
    assert [e.details["retry_in"] for e in errors] == [10.0, 20.0]
    assert len(client.orders) == 1


def test_authentication_errors_end_the_watch() -> None:
    """A bad key is not retried: the error propagates out of the loop."""
    _clock, client, watcher = make([server(1, 0.0001)], rent=IMAGE)
    client.fail["marketplace"] = [AuthenticationError(3)]
    with pytest.raises(AuthenticationError):
        list(watcher.run())


def test_a_dry_run_rents_nothing() -> None:
    """--dry-run reports what it would rent, up to count, without calling create_order."""
    _clock, client, watcher = make([server(1, 0.0001)], rent=IMAGE, dry_run=True)
    events = run_until(watcher.run(), "done")
    assert client.count("create_order") == 0
    assert [e.details["dry_run"] for e in events if e.kind == "renting"] == [True]


def test_max_time_cancels_the_rented_order_before_it_is_crossed() -> None:
    """With --max-time the watcher guards its order and cancels it within a poll of the limit."""
    _clock, client, watcher = make([server(1, 0.0001)], rent=IMAGE, limits=Limits(max_time=600))
    events = run_until(watcher.run(), "done")
    cancelled = [e for e in events if e.kind == "guard_cancelled"]
    assert len(cancelled) == 1
    (order,) = client.orders.values()
    age = cancelled[0].at - order["ct"]
    assert 590 <= age <= 600


def test_two_watchers_sharing_a_state_file_rent_once(tmp_path: Path) -> None:
    """Two watchers of the same watch (one state file) together rent no more than count."""
    state = StateFile(tmp_path / "w.json")
    clock, client, _ = make([])
    a = Watcher(client, clock, max_price=CAP, rent=IMAGE, state=state).run()
    b = Watcher(client, clock, max_price=CAP, rent=IMAGE, state=state).run()
    client.servers = {1: server(1, 0.0001), 2: server(2, 0.0001)}
    kinds_a = [e.kind for e in run_until(a, "done")]
    kinds_b = [e.kind for e in run_until(b, "done")]
    assert len(client.orders) == 1
    assert "rented" in kinds_a
    assert kinds_b == ["done"]
