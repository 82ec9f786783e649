"""Unit tests of the state files and of the rental ledger's reconcile rules."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from clore._wire import Order
from clore.workflows.aio import aiterate
from clore.workflows.state import (
    Rental,
    StateFile,
    new_owner,
    reconcile,
    release_owner,
    state_key,
)

T0 = 1_700_000_000.0


def rental(owner: str, **kw: object) -> Rental:
    fields: dict = {"server_id": 1, "price": 0.1, "currency": "bitcoin", "intent_at": T0}
    return Rental(owner=owner, pid=os.getpid(), **{**fields, **kw})


def test_a_pending_intent_of_a_live_loop_is_left_alone() -> None:
    """An intent whose loop is still running (in flight) is not settled by anyone else."""
    owner = new_owner()
    try:
        r = rental(owner)
        assert reconcile([r], [], T0 + 120) == []
        assert r.status == "pending"
    finally:
        release_owner(owner)


def test_a_dead_loops_intent_becomes_rented_when_its_order_exists() -> None:
    """An orphaned intent is matched to the order on its server created after the intent."""
    r = rental("gone")
    orders = [Order(id=8, si=1, ct=T0 - 600), Order(id=9, si=1, ct=T0 + 1)]
    assert reconcile([r], orders, T0 + 10) == [r]
    assert (r.status, r.order_id) == ("rented", 9)


def test_orders_are_matched_to_the_intent_on_the_servers_clock() -> None:
    """With the server two hours ahead (an advanced sandbox), an order from before the
    intent is not taken for it, though its ct is later than the loop's own clock."""
    r = rental("gone", intent_server_at=T0 + 7200)
    orders = [Order(id=8, si=1, ct=T0 + 3600), Order(id=9, si=1, ct=T0 + 7201)]
    assert reconcile([r], orders, T0 + 10) == [r]
    assert (r.status, r.order_id) == ("rented", 9)


def test_an_orphaned_intent_without_order_is_void_only_after_the_grace() -> None:
    """No order found: the intent still counts during the grace period, then becomes void."""
    r = rental("gone")
    assert reconcile([r], [], T0 + 30, grace=60) == []
    assert reconcile([r], [], T0 + 61, grace=60) == [r]
    assert r.status == "void"


def test_state_files_are_replaced_atomically_and_private(tmp_path: Path) -> None:
    """A written state file has mode 0600 and leaves no temporary files behind."""
    file = StateFile(tmp_path / "s" / "x.json")
    file.write({"a": 1})
    file.write({"a": 2})
    assert file.read(dict) == {"a": 2}
    assert (file.path.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in file.path.parent.iterdir()) == ["x.json"]


def test_the_lock_serialises_read_modify_write_across_threads(tmp_path: Path) -> None:
    """Eight threads incrementing a counter under the lock lose no update."""
    file = StateFile(tmp_path / "counter.json")
    file.write({"n": 0})

    def bump() -> None:
        for _ in range(25):
            with file.locked():
                value = file.read(dict) or {"n": 0}
                file.write({"n": value["n"] + 1})

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert file.read(dict) == {"n": 200}


def test_state_key_is_stable_for_equal_parameters() -> None:
    """The same watch parameters, in any key order, name the same state file."""
    assert state_key({"a": 1, "b": [2]}) == state_key({"b": [2], "a": 1})
    assert state_key({"a": 1}) != state_key({"a": 2})


async def test_aiterate_yields_a_generators_items_and_closes_it() -> None:
    """aiterate runs a synchronous generator step by step off the loop, then closes it."""
    closed: list[bool] = []

    def numbers() -> Iterator[int]:
        try:
            yield from range(3)
        finally:
            closed.append(True)

    assert [n async for n in aiterate(numbers())] == [0, 1, 2]
    assert closed == [True]
