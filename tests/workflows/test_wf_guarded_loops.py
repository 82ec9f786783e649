"""The watcher's and the spot keeper's own guards when a cancel's answer is lost.

The cancel happens, its answer is lost, and the immediate ``my_orders`` check fails too:
the loop must still report ``guard_cancelled`` once the order shows ended, and the spot
keeper must not treat the order it cancelled itself as lost to the market (and rent a
replacement).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wf_sandbox import World

from clore._errors import APIConnectionError, APITimeoutError
from clore._wire import Order
from clore.workflows import Limits, RentSpec, SpotKeeper, Watcher

PASSWORD = "abc123"


class LostCancelAnswer:
    """Wraps a client: its first cancel takes effect but the answer is lost, and the
    ``my_orders(include_completed=True)`` read right after it fails as well."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lose = 1
        self.fail_reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        self.inner.cancel_order(order_id, issue)
        if self.lose:
            self.lose -= 1
            self.fail_reads = 1
            raise APITimeoutError("cancel_order: no answer within 30 s")

    def my_orders(self, include_completed: bool = False) -> list[Order]:
        if include_completed and self.fail_reads:
            self.fail_reads -= 1
            raise APIConnectionError("my_orders: connection reset")
        return self.inner.my_orders(include_completed)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def _until(events: Iterator[Any], kind: str, limit: int = 200) -> list[Any]:
    seen: list[Any] = []
    for event in events:
        seen.append(event)
        if event.kind == kind or len(seen) >= limit:
            break
    return seen


def test_the_spot_keeper_does_not_recover_an_order_its_guard_cancelled(world: World) -> None:
    """A guard cancel whose answer and check are lost ends the keeper with guard_cancelled,
    and no replacement bid is placed."""
    client = LostCancelAnswer(world.client())
    ours = world.client().create_order(
        11, "img", order_type="spot", spotprice=0.0001, ssh_password=PASSWORD
    )
    keeper = SpotKeeper(client, world.clock, ours.id, max_bid=0.00015, interval=60,
                        recover=True, rent=RentSpec(image="img", ssh_password=PASSWORD),
                        limits=Limits(max_time=600))  # fmt: skip
    events = _until(keeper.run(), "guard_cancelled")
    kinds = [e.kind for e in events]
    assert kinds[-1] == "guard_cancelled"
    assert events[-1].details["reconciled"] is True
    assert "recovering" not in kinds and "recovered" not in kinds
    assert [ours.id] == [o.id for o in world.client().my_orders(include_completed=True)]


def test_the_watcher_reports_a_guard_cancel_whose_answer_was_lost(world: World) -> None:
    """The watch's guard reports guard_cancelled (reconciled) for its rental once
    my_orders shows it ended, instead of silently forgetting it."""
    client = LostCancelAnswer(world.client())
    watcher = Watcher(client, world.clock, match=lambda s: s.id == 13, max_price=0.0002,
                      rent=RentSpec(image="img", ssh_password=PASSWORD), count=1,
                      limits=Limits(max_time=600), interval=60)  # fmt: skip
    events = _until(watcher.run(), "guard_cancelled")
    cancelled = [e for e in events if e.kind == "guard_cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0].details["reconciled"] is True
