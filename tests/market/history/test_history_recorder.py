"""The recording loop on the in-process sandbox and its ManualClock: the schedule, rates,
errors ridden out, and the minimum interval."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest

from clore.market.history import HistoryError, HistoryStore, record_loop

if TYPE_CHECKING:
    from clore import Clore
    from clore._clock import ManualClock
    from clore.sandbox import Sandbox

SANDBOX_RATES = {"bitcoin": 68022.87, "CLORE-Blockchain": 0.002705, "USD-Blockchain": 1.0}


class Counting:
    """A client that counts its calls (and passes them on)."""

    def __init__(self, client: Clore) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name in ("marketplace", "spot_marketplace"):

            def call(*args: Any) -> Any:
                self.calls.append(name)
                return attr(*args)

            return call
        return attr


def test_count_snapshots_are_taken_one_interval_apart(
    clore_client: Clore, sandbox_clock: ManualClock, store: HistoryStore
) -> None:
    """--count 3 --interval 5m: three snapshots at server times 300 s apart."""
    events = list(record_loop(clore_client, store, clock=sandbox_clock, interval=300, count=3))
    times = [e.result.at for e in events if e.result]
    assert [b - a for a, b in itertools.pairwise(times)] == [300.0, 300.0]


def test_duration_bounds_the_loop(
    clore_client: Clore, sandbox_clock: ManualClock, store: HistoryStore
) -> None:
    """--for 15m at 5m: polls at 0, 5 and 10 minutes, then the loop ends."""
    events = list(record_loop(clore_client, store, clock=sandbox_clock, interval=300, duration=900))
    assert (len(events), store.info().snapshots) == (3, 3)


def test_rates_are_recorded_and_fetched_once_per_ten_minutes(
    clore_client: Clore, sandbox_clock: ManualClock, store: HistoryStore
) -> None:
    """spot_marketplace supplies the USD rates every 600 s; snapshots in between reuse them."""
    client = Counting(clore_client)
    list(record_loop(client, store, clock=sandbox_clock, interval=300, count=4))  # type: ignore[arg-type]
    stored = [s.rates for s in store.snapshots()]
    assert (client.calls.count("spot_marketplace"), stored) == (2, [SANDBOX_RATES] * 4)


def test_without_rates_snapshots_are_stored_without_them(
    clore_client: Clore, sandbox_clock: ManualClock, store: HistoryStore
) -> None:
    """rates_every=None (no API key): no spot_marketplace call, rates NULL."""
    client = Counting(clore_client)
    loop = record_loop(client, store, clock=sandbox_clock, interval=300, count=2, rates_every=None)  # type: ignore[arg-type]
    list(loop)
    assert (
        client.calls,
        [s.rates for s in store.snapshots()],
    ) == (["marketplace"] * 2, [None, None])


def test_a_failing_poll_is_reported_and_the_loop_goes_on(
    sandbox: Sandbox, sandbox_clock: ManualClock, store: HistoryStore
) -> None:
    """A database error from the API is an error event; the next slot records again."""
    with sandbox.client(max_retries=0) as client:
        sandbox.inject_fault("marketplace", "db_error", count=1)
        events = list(record_loop(client, store, clock=sandbox_clock, interval=300, count=2))
    assert (
        events[0].error is not None and "DatabaseError" in events[0].error,
        events[1].error is not None,
        store.info().snapshots,
    ) == (True, False, 1)


def test_the_interval_is_at_least_a_minute(
    clore_client: Clore, sandbox_clock: ManualClock, store: HistoryStore
) -> None:
    """The API's advice (polls of 60 s or more) is enforced before anything is fetched."""
    with pytest.raises(HistoryError, match="at least 60"):
        next(record_loop(clore_client, store, clock=sandbox_clock, interval=30))


def test_a_slow_poll_skips_the_slots_it_missed(
    clore_client: Clore, sandbox_clock: ManualClock, store: HistoryStore
) -> None:
    """A poll that overran two slots is followed by the next slot still ahead, not a burst."""
    start = sandbox_clock.time()
    loop = record_loop(clore_client, store, clock=sandbox_clock, interval=300, count=2)
    next(loop)
    sandbox_clock.advance(700)  # the consumer (or the network) took 700 s
    second = next(loop)
    assert second.result is not None
    assert pytest.approx(second.result.at - start, abs=2) == 900.0
