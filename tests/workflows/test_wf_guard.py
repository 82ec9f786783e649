"""Unit tests of the budget guards, the limit registry and the runway warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wf_fakes import FakeClient, ScriptedClock, server
from wf_sandbox import World

from clore._errors import APIConnectionError, APITimeoutError, DatabaseError
from clore._paths import data_dir
from clore._wire import Order
from clore.workflows.guard import Guard, breach, guard, register_limits, registered_limits
from clore.workflows.plan import Limits, planned_cost, planned_seconds

START = 1_700_000_000.0


def test_breach_looks_one_poll_ahead() -> None:
    """An order is over its limit when the next poll would find it over, not only after."""
    order = Order(id=1, ct=START, price=0.0864, spend=0.009)  # 0.001 per 1000 s
    assert breach(order, START + 100, Limits(max_spend=0.01)) is None
    crossed = breach(order, START + 100, Limits(max_spend=0.01), lookahead=1000)
    assert crossed is not None and crossed.limit == "max_spend"
    assert breach(order, START + 500, Limits(max_time=600), lookahead=100) is not None
    assert breach(order, START + 499, Limits(max_time=600), lookahead=100) is None


def test_guard_cancels_an_order_crossing_max_spend_without_an_issue() -> None:
    """The guarded order is cancelled with no issue text and the reason goes to guard.log."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.0864)])
    order = client.create_order(1, "img")
    events = list(guard(client, clock, order_ids=[order.id], limits=Limits(max_spend=0.005)))
    assert [e.kind for e in events] == ["guard_cancelled"]
    assert ("cancel_order", (order.id, None)) in [(n, a) for _, n, a in client.calls]
    assert client.orders[order.id]["spend_before"] <= 0.005
    (line,) = (data_dir() / "workflows" / "guard.log").read_text().splitlines()
    assert json.loads(line)["order_id"] == order.id
    assert "max_spend" in json.loads(line)["reason"]
    assert "limit 0.005 BTC" in json.loads(line)["reason"]


def test_guard_all_enforces_registered_limits() -> None:
    """`guard --all` without explicit limits applies the limits registered at rent time."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.0001), server(2, 0.0001)])
    kept = client.create_order(1, "img")
    limited = client.create_order(2, "img")
    register_limits(limited.id, Limits(max_time=300))
    events = list(guard(client, clock, interval=60, until=START + 1200))
    assert [(e.kind, e.order_id) for e in events] == [("guard_cancelled", limited.id)]
    assert not client.orders[kept.id]["expired"]
    assert limited.id not in registered_limits()


def test_guard_warns_when_a_wallet_runway_gets_short() -> None:
    """A balance lasting less than the threshold at the current burn yields one warning."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.01)])
    client.wallet_balance = {"bitcoin": 0.005}
    client.create_order(1, "img")
    events = list(guard(client, clock, runway_below=86400, interval=60, until=START + 600))
    assert [e.kind for e in events] == ["low_runway"]
    assert events[0].details["runway_seconds"] == pytest.approx(43200)


def test_planned_duration_is_max_time_capped_by_mrl_else_mrl() -> None:
    """The budget rule: --max-time (at most mrl) when given, else the server's mrl."""
    srv = server(1, 0.0002, mrl=10)
    assert planned_seconds(srv, max_time=3600) == 3600
    assert planned_seconds(srv, max_time=86400) == 36000
    assert planned_seconds(srv) == 36000
    assert planned_seconds(server(2, mrl=0)) is None
    assert planned_cost(0.0002, 43200) == pytest.approx(0.0001)
    assert planned_cost(0.0002, 43200, max_spend=0.00005) == 0.00005
    assert planned_cost(0.0002, None, max_spend=0.00005) == 0.00005


def test_runway_counts_the_renter_fee_paid_on_top_of_the_price() -> None:
    """The burn rate is the price plus the renter fee: 10% on demand shortens the runway."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.01)])
    client.fee_percent["on_demand"] = 10.0
    client.wallet_balance = {"bitcoin": 0.005}
    client.create_order(1, "img")
    events = list(guard(client, clock, runway_below=86400, interval=60, until=START + 600))
    assert [e.kind for e in events] == ["low_runway"]
    assert events[0].details["burn_per_day"] == pytest.approx(0.011)
    assert events[0].details["runway_seconds"] == pytest.approx(43200 / 1.1)


def test_guard_stops_at_until_not_one_interval_later() -> None:
    """--until/--for end the guard at that time, not at the next check after it."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.0001)])
    client.create_order(1, "img")
    list(guard(client, clock, limits=Limits(max_time=86400), interval=60, until=START + 90))
    assert clock.time() - START == 90
    assert client.count("my_orders") == 2


class _LostAnswer:
    """Wraps a client: the next ``lose`` cancels take effect, then their answer is lost."""

    def __init__(self, inner: FakeClient, lose: int = 1, fail_reads: int = 0) -> None:
        self.inner = inner
        self.lose = lose
        self.fail_reads = fail_reads  # my_orders(include_completed=True) failures after a loss

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        self.inner.cancel_order(order_id, issue)
        if self.lose:
            self.lose -= 1
            raise APITimeoutError("cancel_order: no answer within 30 s")

    def my_orders(self, include_completed: bool = False) -> list[Order]:
        if include_completed and self.fail_reads:
            self.fail_reads -= 1
            raise APIConnectionError("my_orders: connection reset")
        return self.inner.my_orders(include_completed)


def _log_lines() -> list[dict[str, object]]:
    path = data_dir() / "workflows" / "guard.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_cancel_whose_answer_is_lost_is_reconciled_with_my_orders() -> None:
    """The cancel happened but its answer was lost: my_orders settles it, so the guard
    reports guard_cancelled (reconciled), logs it and forgets the limit."""
    clock = ScriptedClock(START)
    fake = FakeClient(clock, [server(1, 0.0001)])
    order = fake.create_order(1, "img")
    register_limits(order.id, Limits(max_time=300))
    client = _LostAnswer(fake)
    events = list(guard(client, clock, order_ids=[order.id], interval=60))  # type: ignore[arg-type]
    assert [(e.kind, e.details.get("reconciled")) for e in events] == [("guard_cancelled", True)]
    assert fake.count("cancel_order") == 1
    assert [(r["order_id"], r["reconciled"]) for r in _log_lines()] == [(order.id, True)]
    assert order.id not in registered_limits()


def test_a_reconcile_that_cannot_read_settles_at_the_next_round() -> None:
    """When my_orders fails right after the lost answer too, the next round still finds
    the order ended and reports guard_cancelled, instead of silently losing the record."""
    clock = ScriptedClock(START)
    fake = FakeClient(clock, [server(1, 0.0001)])
    order = fake.create_order(1, "img")
    register_limits(order.id, Limits(max_time=300))
    client = _LostAnswer(fake, fail_reads=1)
    events = list(guard(client, clock, order_ids=[order.id], interval=60))  # type: ignore[arg-type]
    assert [(e.kind, e.order_id) for e in events] == [
        ("error", order.id),
        ("guard_cancelled", order.id),
    ]
    assert events[1].details["reconciled"] is True
    assert fake.count("cancel_order") == 1
    assert [r["order_id"] for r in _log_lines()] == [order.id]
    assert order.id not in registered_limits()


def test_an_uncertain_cancel_that_did_not_happen_is_retried_at_the_next_round() -> None:
    """A timed-out cancel that my_orders shows still running is an error, and the next
    round cancels again."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.0001)])
    order = client.create_order(1, "img")
    client.fail["cancel_order"] = [APITimeoutError("cancel_order: no answer within 30 s")]
    events = list(guard(client, clock, order_ids=[order.id], limits=Limits(max_time=300)))
    assert [(e.kind, e.details.get("reconciled")) for e in events] == [
        ("error", None),
        ("guard_cancelled", False),
    ]
    assert client.count("cancel_order") == 2
    assert client.orders[order.id]["expired"]


def test_once_reports_a_failed_cancel_without_promising_a_retry() -> None:
    """With once, a failed cancel is a fatal error naming the order, not 'retrying in 60 s'."""
    clock = ScriptedClock(START)
    client = FakeClient(clock, [server(1, 0.0001)])
    order = client.create_order(1, "img")
    client.fail["cancel_order"] = [DatabaseError(1)]
    loop = Guard(client, clock, order_ids=[order.id], limits=Limits(max_time=30), once=True)
    (event,) = list(loop.run())
    assert (event.kind, event.order_id, event.details["fatal"]) == ("error", order.id, True)
    assert "retrying" not in event.message
    assert [order.id] == loop.unsettled


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
