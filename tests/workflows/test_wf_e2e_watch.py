"""End to end against the in-process sandbox: watch, restart, two watchers, guards, monitor."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
from wf_sandbox import GPU_4090, World, run_until

from clore._clock import ManualClock
from clore.workflows import Hooks, Limits, OrderMonitor, RentSpec, StateFile, Watcher, guard

CAP = 0.0002
RENT = RentSpec(image="cloreai/ubuntu22.04-jupyter", ssh_password="abc123")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def is_4090(server: Any) -> bool:
    return bool(server.gpu_model.endswith("4090"))


def watcher(world: World, client: Any = None, **kw: Any) -> Watcher:
    options: dict[str, Any] = {"match": is_4090, "max_price": CAP, "rent": RENT, **kw}
    return Watcher(client or world.client(), world.clock, **options)


def test_a_price_drop_under_the_cap_is_rented_once_at_the_locked_price(world: World) -> None:
    """Server 12 drops to 0.00018: exactly one order, on it, at 0.00018, within one interval."""
    drop_at = world.clock.time() + 93.7
    world.clock.at(drop_at, lambda: world.set_price(12, 0.00018))
    events = run_until(watcher(world).run(), "done")
    orders = world.client().my_orders()
    assert [(o.si, float(o.price)) for o in orders] == [(12, 0.00018)]
    assert 0 <= orders[0].ct - drop_at <= 10.0 + 2.0  # one interval plus pacing
    assert [e.kind for e in events] == ["match", "renting", "rented", "done"]
    assert world.wire.rejected == 0


def test_two_watchers_on_one_key_rent_once_without_rate_limit_errors(
    world: World, tmp_path: Path
) -> None:
    """Two concurrent watchers (one key, pacing and state) rent one server and meet no 429."""
    state = StateFile(tmp_path / "watch.json")
    stop = world.clock.time() + 600
    world.at(61, lambda: world.set_price(11, 0.00019))
    world.at(61, lambda: world.set_price(12, 0.00018))
    results: dict[str, list[Any]] = {}

    def run(name: str) -> None:
        w = watcher(world, world.client(shared=True), state=state, until=stop, interval=5.0)
        results[name] = list(w.run())

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(world.client().my_orders()) == 1
    assert world.wire.rejected == 0
    rented = [e for events in results.values() for e in events if e.kind == "rented"]
    assert len(rented) == 1
    assert not [e for events in results.values() for e in events if e.kind == "error"]


class InterruptAfterCreate:
    """A client whose create_order places the order and then is 'killed' (Ctrl-C)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_order(self, *args: Any, **kwargs: Any) -> Any:
        self.inner.create_order(*args, **kwargs)
        raise KeyboardInterrupt


def test_a_watcher_restarted_mid_rental_does_not_rent_twice(world: World, tmp_path: Path) -> None:
    """Killed after the order committed but before recording it, the next watcher adopts it."""
    state = StateFile(tmp_path / "watch.json")
    world.set_price(12, 0.00018)
    with pytest.raises(KeyboardInterrupt):
        list(watcher(world, InterruptAfterCreate(world.client()), state=state).run())
    world.set_price(11, 0.00017)  # a second offer that a confused watcher would rent
    events = run_until(watcher(world, state=state).run(), "done")
    assert [o.si for o in world.client().my_orders()] == [12]
    assert [e.kind for e in events] == ["rented", "done"]


def test_a_dropped_create_order_answer_rents_exactly_once(world: World) -> None:
    """The sandbox commits and drops the answer: the SDK and the watcher still rent once."""
    world.set_price(12, 0.00018)
    world.set_price(11, 0.00019)
    world.sandbox.inject_fault("create_order", "drop_after_commit")
    events = run_until(watcher(world, count=1).run(), "done")
    assert [o.si for o in world.client().my_orders()] == [12]
    assert events[-1].details["rentals"] == 1


def test_poll_faults_do_not_stop_the_watch(world: World) -> None:
    """Code 1, 429, HTTP 500 and a timeout on the marketplace are ridden out."""
    for fault in ("db_error", "rate_limit", "http_500", "timeout"):
        world.sandbox.inject_fault("marketplace", fault, count=4)
    world.at(30, lambda: world.set_price(12, 0.00018))
    events = run_until(watcher(world).run(), "done", limit=500)
    assert [o.si for o in world.client().my_orders()] == [12]
    assert any(e.kind == "error" for e in events)


def test_a_spend_limit_cancels_the_order(world: World) -> None:
    """`guard` cancels an order before its spend crosses --max-spend."""
    client = world.client()
    order = client.create_order(12, "img", ssh_password="abc123")  # 0.0004 BTC/day
    limit = 0.0004 * 3 / 24  # three hours' worth
    events = list(guard(client, world.clock, order_ids=[order.id],
                        limits=Limits(max_spend=limit), interval=60))  # fmt: skip
    assert [e.kind for e in events] == ["guard_cancelled"]
    final = client.get_order(order.id)
    assert final.expired
    assert float(final.spend) <= limit


class _Failing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_monitor_keeps_running_when_its_webhook_fails(world: World) -> None:
    """A webhook answering 500 yields hook_failed events; the monitor reports on regardless."""
    server = HTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = world.client()
        client.create_order(12, "img", ssh_password="abc123")
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        hooks = Hooks(webhooks=[url], retries=1, clock=ManualClock(), webhook_timeout=2.0)
        mon = OrderMonitor(client, world.clock, interval=30, expiring_within=72 * 3600 - 120,
                           until=world.clock.time() + 300)  # fmt: skip
        kinds = []
        for event in mon.run():
            kinds.append(event.kind)
            kinds.extend(f.kind for f in hooks.dispatch(event))
        assert kinds[:2] == ["tracking", "hook_failed"]
        assert "ready" in kinds and "expiring" in kinds
        assert kinds.count("hook_failed") == len(kinds) // 2
    finally:
        server.shutdown()


def test_the_monitor_sees_an_order_outbid_resumed_and_cancelled(world: World) -> None:
    """A rival outbids our spot order, then leaves; then we cancel it from elsewhere."""
    client = world.client()
    ours = client.create_order(11, "img", order_type="spot", spotprice=0.0001, ssh_password="x1")
    rival_key, _ = world.sandbox.create_user("rival", {"bitcoin": 1.0})
    rival = world.client(rival_key)
    theirs: list[Any] = []
    world.at(
        40,
        lambda: theirs.append(
            rival.create_order(11, "img", order_type="spot", spotprice=0.0002, ssh_password="x1")
        ),
    )
    world.at(100, lambda: rival.cancel_order(theirs[0].id))
    world.at(160, lambda: world.client().cancel_order(ours.id))
    mon = OrderMonitor(client, world.clock, interval=15, until=world.clock.time() + 240)
    kinds = ("outbid", "resumed", "cancelled")
    events = [(e.kind, e.order_id) for e in mon.run() if e.kind in kinds]
    assert events == [(kind, ours.id) for kind in kinds]


def test_matches_are_reported_without_renting(world: World) -> None:
    """Report mode lists a 4090 under the cap when it appears and when it goes."""
    world.at(20, lambda: world.set_price(12, 0.00018))
    world.at(50, lambda: world.set_price(12, 0.0004))
    w = Watcher(world.client(), world.clock, match=is_4090, max_price=CAP,
                until=world.clock.time() + 100)  # fmt: skip
    assert [(e.kind, e.server_id) for e in w.run()] == [
        ("match", 12),
        ("unmatch", 12),
        ("done", None),
    ]
    assert world.client().my_orders() == []
    assert GPU_4090.endswith("4090")


# ---- late commits: the first create_order reaches the sandbox after the SDK gave up on it

#: Sandbox seconds after which a timed late_commit lands: after the SDK's checks (about
#: 15 s), within the watch's 60 s grace for an order in doubt.
LATE = 40.0


def refuse_resends(world: World) -> None:
    """Every create_order attempt of the SDK's resend is answered 429 (four in a row)."""
    world.sandbox.inject_fault("create_order", "rate_limit", count=4)


@pytest.mark.parametrize("arrival", ["before the resend", "after the call"])
def test_a_late_commit_and_a_refused_resend_rent_exactly_once(world: World, arrival: str) -> None:
    """The first create_order commits late and the resend meets only 429s: one rental, on
    the first server, and the watch never rents the next cheapest."""
    world.set_price(12, 0.00018)
    world.set_price(11, 0.00019)
    if arrival == "before the resend":
        world.sandbox.inject_fault("create_order", "late_commit")
    else:
        world.sandbox.inject_fault("create_order", "late_commit", seconds=LATE)
    refuse_resends(world)
    events = run_until(watcher(world).run(), "done", limit=100)
    # One SDK call: the held first send (it landed: the order) and four refused resends.
    assert len(world.wire.sent("create_order")) == 5 and world.sandbox.faults() == []
    assert [o.si for o in world.client().my_orders()] == [12]
    assert [e.kind for e in events].count("rented") == 1
    assert events[-1].details["rentals"] == 1


def test_a_late_spot_bid_places_exactly_one_offer(world: World) -> None:
    """A spot bid whose first send commits after the SDK gave up: one offer, not two (the
    SDK does not resend a bid in doubt; the watch settles it from my_orders)."""
    world.sandbox.inject_fault("create_order", "late_commit", seconds=LATE)
    spot = msgspec.structs.replace(RENT, order_type="spot")
    w = watcher(world, rent=spot, spot=True, count=1, interval=30.0)
    events = run_until(w.run(), "done", limit=100)
    assert len(world.wire.sent("create_order")) == 1
    assert [(o.si, o.spot) for o in world.client().my_orders()] == [(11, True)]
    assert [e.kind for e in events].count("rented") == 1
    assert events[-1].details["rentals"] == 1
