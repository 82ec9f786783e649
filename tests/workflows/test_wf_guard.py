"""Unit tests of the budget guards, the limit registry and the runway warning."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from wf_sandbox import START, World, record

from clore._errors import DatabaseError
from clore._paths import data_dir
from clore._wire import Order, Price, Server
from clore.workflows.guard import Guard, breach, guard, register_limits, registered_limits
from clore.workflows.plan import Limits, planned_cost, planned_seconds


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, [record(1, 0.0864, mrl=24), record(2, 0.0001, mrl=24)])
    yield w
    w.close()


def test_breach_looks_one_poll_ahead() -> None:
    """An order is over its limit when the next poll would find it over, not only after."""
    order = Order(id=1, ct=START, price=0.0864, spend=0.009)  # 0.001 per 1000 s
    assert breach(order, START + 100, Limits(max_spend=0.01)) is None
    crossed = breach(order, START + 100, Limits(max_spend=0.01), lookahead=1000)
    assert crossed is not None and crossed.limit == "max_spend"
    assert breach(order, START + 500, Limits(max_time=600), lookahead=100) is not None
    assert breach(order, START + 499, Limits(max_time=600), lookahead=100) is None


def test_a_breach_is_described_by_the_output_rules() -> None:
    """The reason names the currency's digits and human durations (``7333 s`` is not one)."""
    order = Order(id=1, ct=START, price=0.0864, spend=0.009)
    spend = breach(order, START + 100, Limits(max_spend=0.01), lookahead=1000)
    late = breach(order, START + 28_000, Limits(max_time=28_800), lookahead=1_200)
    assert spend is not None and late is not None
    assert [spend.describe("bitcoin"), late.describe()] == [
        "max_spend: 0.01000 BTC by the next check, limit 0.01000 BTC",
        "max_time: 8 h 7 min by the next check, limit 8 h",  # 29200 s
    ]


def test_guard_cancels_an_order_crossing_max_spend_without_an_issue(world: World) -> None:
    """The guarded order is cancelled with no issue text and the reason goes to guard.log."""
    client = world.scripted()
    order = client.create_order(1, "img")
    events = list(guard(client, world.clock, order_ids=[order.id], limits=Limits(max_spend=0.005)))
    assert [e.kind for e in events] == ["guard_cancelled"]
    (cancel,) = world.wire.sent("cancel_order")
    assert (cancel.body, cancel.code) == ({"id": order.id}, 0)
    assert world.order(order.id).ended and world.order(order.id).spend <= 0.005
    (line,) = (data_dir() / "workflows" / "guard.log").read_text().splitlines()
    assert json.loads(line)["order_id"] == order.id
    assert "max_spend" in json.loads(line)["reason"]
    assert "limit 0.005000 BTC" in json.loads(line)["reason"]


def test_guard_all_enforces_registered_limits(tmp_path: Path) -> None:
    """`guard --all` without explicit limits applies the limits registered at rent time."""
    world = World(tmp_path, [record(1, 0.0001, mrl=24), record(2, 0.0001, mrl=24)])
    client = world.scripted()
    kept = client.create_order(1, "img")
    limited = client.create_order(2, "img")
    register_limits(limited.id, Limits(max_time=300))
    until = world.clock.time() + 1200
    events = list(guard(client, world.clock, interval=60, until=until))
    assert [(e.kind, e.order_id) for e in events] == [("guard_cancelled", limited.id)]
    assert not world.order(kept.id).ended and world.order(limited.id).ended
    assert limited.id not in registered_limits()
    world.close()


def test_guard_warns_when_a_wallet_runway_gets_short(tmp_path: Path) -> None:
    """A balance lasting less than the threshold at the current burn yields one warning."""
    world = World(tmp_path, [record(1, 0.01, mrl=24)])
    client = world.scripted(world.user("tight", 0.005))
    client.create_order(1, "img")
    until = world.clock.time() + 600
    events = list(guard(client, world.clock, runway_below=86400, interval=60, until=until))
    assert [e.kind for e in events] == ["low_runway"]
    details = events[0].details
    assert pytest.approx(details["balance"] / 0.011 * 86400) == details["runway_seconds"]
    assert 0.4 * 86400 < details["runway_seconds"] < 86400
    # 9.6 to 24 hours, in the human form (not "10.9 h").
    assert re.fullmatch(r"bitcoin wallet runs out in \d+ h(?: \d+ min)? at the burn rate",
                        events[0].message), events[0].message  # fmt: skip
    world.close()


def _server(sid: int, price: float = 0.0001, mrl: float = 24.0) -> Server:
    return Server(id=sid, mrl=mrl, price=Price(on_demand={"bitcoin": price}))


def test_planned_duration_is_max_time_capped_by_mrl_else_mrl() -> None:
    """The budget rule: --max-time (at most mrl) when given, else the server's mrl."""
    srv = _server(1, 0.0002, mrl=10)
    assert planned_seconds(srv, max_time=3600) == 3600
    assert planned_seconds(srv, max_time=86400) == 36000
    assert planned_seconds(srv) == 36000
    assert planned_seconds(_server(2, mrl=0)) is None
    assert planned_cost(0.0002, 43200) == pytest.approx(0.0001)
    assert planned_cost(0.0002, 43200, max_spend=0.00005) == 0.00005
    assert planned_cost(0.0002, None, max_spend=0.00005) == 0.00005


def test_runway_counts_the_renter_fee_paid_on_top_of_the_price(tmp_path: Path) -> None:
    """The burn rate is the price plus the renter fee: 10% on demand shortens the runway."""
    world = World(tmp_path, [record(1, 0.01, mrl=24)])
    client = world.scripted(world.user("tight", 0.005))
    client.create_order(1, "img")
    until = world.clock.time() + 600
    events = list(guard(client, world.clock, runway_below=86400, interval=60, until=until))
    assert [e.kind for e in events] == ["low_runway"]
    assert events[0].details["burn_per_day"] == pytest.approx(0.011)
    assert events[0].details["runway_seconds"] == pytest.approx(
        events[0].details["balance"] / 0.01 * 86400 / 1.1
    )
    world.close()


def test_guard_stops_at_until_not_one_interval_later(world: World) -> None:
    """--until/--for end the guard at that time, not at the next check after it."""
    client = world.scripted()
    client.create_order(2, "img")
    start = world.clock.time()
    list(guard(client, world.clock, limits=Limits(max_time=86400), interval=60, until=start + 90))
    assert world.clock.time() - start == 90
    assert client.count("my_orders") == 2


def _log_lines() -> list[dict[str, object]]:
    path = data_dir() / "workflows" / "guard.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_cancel_whose_answer_is_lost_is_reconciled_with_my_orders(world: World) -> None:
    """The cancel happened but its answer was lost: my_orders settles it, so the guard
    reports guard_cancelled (reconciled), logs it and forgets the limit."""
    client = world.scripted()
    order = client.create_order(2, "img")
    register_limits(order.id, Limits(max_time=300))
    world.sandbox.inject_fault("cancel_order", "timeout_after_commit")
    events = list(guard(client, world.clock, order_ids=[order.id], interval=60))
    assert [(e.kind, e.details.get("reconciled")) for e in events] == [("guard_cancelled", True)]
    assert client.count("cancel_order") == 1 and len(world.wire.sent("cancel_order")) == 1
    assert [(r["order_id"], r["reconciled"]) for r in _log_lines()] == [(order.id, True)]
    assert order.id not in registered_limits()


def test_a_reconcile_that_cannot_read_settles_at_the_next_round(world: World) -> None:
    """When my_orders fails right after the lost answer too, the next round still finds
    the order ended and reports guard_cancelled, instead of silently losing the record."""
    client = world.scripted()
    order = client.create_order(2, "img")
    register_limits(order.id, Limits(max_time=300))
    world.sandbox.inject_fault("cancel_order", "timeout_after_commit")
    # The check right after the lost answer fails (every retry of it), the next one works.
    world.wire.before(
        "cancel_order", lambda: world.sandbox.inject_fault("my_orders", "http_500", count=4)
    )
    events = list(guard(client, world.clock, order_ids=[order.id], interval=60))
    assert [(e.kind, e.order_id) for e in events] == [
        ("error", order.id),
        ("guard_cancelled", order.id),
    ]
    assert events[1].details["reconciled"] is True
    assert client.count("cancel_order") == 1
    assert [r["order_id"] for r in _log_lines()] == [order.id]
    assert order.id not in registered_limits()


def test_an_uncertain_cancel_that_did_not_happen_is_retried_at_the_next_round(
    world: World,
) -> None:
    """A timed-out cancel that my_orders shows still running is an error, and the next
    round cancels again."""
    client = world.scripted()
    order = client.create_order(2, "img")
    world.sandbox.inject_fault("cancel_order", "timeout")
    events = list(guard(client, world.clock, order_ids=[order.id], limits=Limits(max_time=300)))
    assert [(e.kind, e.details.get("reconciled")) for e in events] == [
        ("error", None),
        ("guard_cancelled", False),
    ]
    assert client.count("cancel_order") == 2
    assert world.order(order.id).ended


def test_once_reports_a_failed_cancel_without_promising_a_retry(world: World) -> None:
    """With once, a failed cancel is a fatal error naming the order, not 'retrying in 60 s'."""
    client = world.scripted()
    order = client.create_order(2, "img")
    world.sandbox.inject_fault("cancel_order", "db_error")
    loop = Guard(client, world.clock, order_ids=[order.id], limits=Limits(max_time=30), once=True)
    (event,) = list(loop.run())
    assert (event.kind, event.order_id, event.details["fatal"]) == ("error", order.id, True)
    assert "retrying" not in event.message
    assert [order.id] == loop.unsettled
    assert not world.order(order.id).ended
    assert DatabaseError.__name__ in event.message or "code 1" in event.message


def test_a_dropped_cancel_answer_on_the_sandbox_is_reconciled(tmp_path: Path) -> None:
    """The sandbox commits the cancel and drops the connection: the guard still reports
    guard_cancelled and forgets the registered limit."""
    world = World(tmp_path)
    try:
        client = world.client()
        order = client.create_order(12, "img", ssh_password="abc123")
        register_limits(order.id, Limits(max_time=600))
        world.sandbox.inject_fault("cancel_order", "drop_after_commit")
        events = list(guard(client, world.clock, order_ids=[order.id], interval=60))
        assert [(e.kind, e.details.get("reconciled")) for e in events] == [
            ("guard_cancelled", True)
        ]
        assert client.get_order(order.id).expired
        assert order.id not in registered_limits()
    finally:
        world.close()


# ---- merging registered limits, and the running guard's lease ----------------------------


def test_registering_merges_with_the_limits_already_registered() -> None:
    """A second registration keeps the limit it does not name; replace drops it."""
    register_limits(7, Limits(max_spend=0.001))
    assert register_limits(7, Limits(max_time=3600)) == Limits(max_spend=0.001, max_time=3600)
    assert registered_limits() == {7: Limits(max_spend=0.001, max_time=3600)}
    assert register_limits(7, Limits(max_spend=0.002)) == Limits(max_spend=0.002, max_time=3600)
    assert register_limits(7, Limits(max_time=60), replace=True) == Limits(max_time=60)
    assert registered_limits() == {7: Limits(max_time=60)}


def test_a_running_guard_leaves_a_live_lease_until_its_rounds_stop(world: World) -> None:
    """While the guard polls, its lease names this process and the limits it applies;
    when my_orders fails for longer than two intervals and the slack, the guard no longer
    counts as enforcing; at the end of the loop the lease is gone."""
    import os

    from clore.workflows.guard import LEASE_SLACK, enforcing, guard_leases

    client = world.scripted()
    order = client.create_order(2, "img")
    limits = Limits(max_time=86400)
    register_limits(order.id, limits)
    seen: dict[str, list] = {}

    def look(name: str) -> None:
        seen[name] = enforcing(order.id, world.clock.time(), registered_limits().get(order.id))

    world.at(90, lambda: look("running"))
    world.at(100, lambda: world.sandbox.inject_fault("my_orders", "db_error", count=1000))
    world.at(100 + 2 * 60 + LEASE_SLACK + 30, lambda: look("failing"))
    events = list(guard(client, world.clock, interval=60, until=world.clock.time() + 400))
    assert any(e.kind == "error" for e in events)
    ((lease, applied),) = seen["running"]
    assert (lease.pid, lease.source, applied, lease.order_ids) == (
        os.getpid(),
        "guard",
        limits,
        None,
    )
    assert seen["failing"] == []
    assert guard_leases() == []


def test_a_lease_of_a_process_that_is_gone_is_not_enforcing_and_is_removed() -> None:
    """A guard killed without cleaning up leaves its file; whoever reads it next sees the
    process gone, does not count it, and removes the file."""
    import subprocess
    import sys

    from clore.workflows.guard import enforcing, guard_leases, new_lease, write_lease

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lease = new_lease("guard", START, 60.0)
    lease.pid = int(done.stdout)
    lease.process = {**lease.process, "pid": lease.pid, "started": None}
    lease.last_round_at = START
    write_lease(lease)
    path = data_dir() / "workflows" / "guard-leases" / f"{lease.token}.json"
    assert path.exists()
    assert enforcing(1, START + 1, Limits(max_time=60)) == []
    assert not path.exists() and guard_leases() == []
