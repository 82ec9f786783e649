"""A loop's ledger in the fleet's Redis: leased, fenced locks; owners alive by lease; the copy
on each machine; and the watch choosing it from its client's pacing."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from clore import Clore, Pacing
from clore._clock import ManualClock
from clore._ledger_redis import FleetStateFile, ledger_keys, merge_rentals, owner_key
from clore.fleet import FleetStoreError, LeaseLostError
from clore.workflows import StateFile, Watcher, WatchState
from clore.workflows.state import Rental, new_owner, reconcile, release_owner, shared_state

KEY = "fleet-ledger-key-0123456789abcdef"
T0 = 1_700_000_000.0


def _ledger(url: str, tmp_path: Path, name: str = "watch-x.json", **kw: float) -> FleetStateFile:
    return FleetStateFile(tmp_path / "copy" / name, url, "d1g3st", **kw)


def _rental(**kw: object) -> Rental:
    fields: dict[str, object] = {"server_id": 5, "price": 1.0, "currency": "bitcoin",
                                 "intent_at": T0, "owner": "someone", "pid": 1, **kw}  # fmt: skip
    return Rental(**fields)  # type: ignore[arg-type]


def test_a_value_written_under_the_lock_is_read_back_and_copied_here(
    redis_url: str, tmp_path: Path
) -> None:
    """Write under the lock, read it back; this machine's copy holds the same."""
    ledger = _ledger(redis_url, tmp_path)
    value = WatchState(rentals=[_rental(status="rented", order_id=9)])
    with ledger.locked():
        ledger.write(value)
    assert ledger.read(WatchState) == value
    assert StateFile(ledger.path).read(WatchState) == value


def test_a_write_after_the_lease_ended_is_refused(redis_url: str, tmp_path: Path) -> None:
    """A holder whose lease lapsed (the lock key expired) writes nothing: LeaseLostError."""
    ledger = _ledger(redis_url, tmp_path)
    with ledger.locked():
        redis.Redis.from_url(redis_url).delete(ledger.lock_key)  # what PX does at lease end
        with pytest.raises(LeaseLostError):
            ledger.write(WatchState(rentals=[_rental()]))
    assert ledger.read(WatchState) is None


def test_a_late_holder_cannot_write_over_the_next_holder(redis_url: str, tmp_path: Path) -> None:
    """Machine A's lease ends, B locks (the next fence) and writes; A's late write is refused
    and B's value stays."""
    a, b = _ledger(redis_url, tmp_path / "a"), _ledger(redis_url, tmp_path / "b")
    server = redis.Redis.from_url(redis_url)
    with a.locked():
        first = a.token
        server.delete(a.lock_key)  # A paused past its lease
        with b.locked():
            b.write(WatchState(rentals=[_rental(id="from-b")]))
            assert int(str(b.token).rsplit(":", 1)[1]) == int(str(first).rsplit(":", 1)[1]) + 1
        with pytest.raises(LeaseLostError):
            a.write(WatchState(rentals=[_rental(id="from-a")]))
    assert [r.id for r in a.read(WatchState).rentals] == ["from-b"]  # type: ignore[union-attr]


def test_a_write_with_a_superseded_fence_is_refused(redis_url: str, tmp_path: Path) -> None:
    """The lock's value alone is not enough: its fence must still be the counter's."""
    ledger = _ledger(redis_url, tmp_path)
    with ledger.locked():
        redis.Redis.from_url(redis_url).incr(ledger.fence_key)
        with pytest.raises(LeaseLostError):
            ledger.write(WatchState())


def test_an_unlocked_write_waits_for_no_one_but_is_refused_while_another_holds(
    redis_url: str, tmp_path: Path
) -> None:
    """Without the lock a write goes only while nobody holds it."""
    a, b = _ledger(redis_url, tmp_path / "a"), _ledger(redis_url, tmp_path / "b")
    b.write(WatchState())
    with a.locked(), pytest.raises(LeaseLostError):
        b.write(WatchState())


def test_a_lock_held_past_the_wait_is_an_error_naming_the_ledger(
    redis_url: str, tmp_path: Path
) -> None:
    """A lock that never frees (lease renewed by someone else) ends the wait with a clear error."""
    ledger = _ledger(redis_url, tmp_path, wait=0.2)
    redis.Redis.from_url(redis_url).set(ledger.lock_key, "other:1", px=60_000)
    shown = r"ledger watch-x.json at redis://127.0.0.1:\d+/0: its lock stayed taken"
    with pytest.raises(FleetStoreError, match=shown), ledger.locked():
        pass  # pragma: no cover


def test_the_copy_restores_what_a_redis_without_its_data_lost(
    redis_url: str, tmp_path: Path
) -> None:
    """Redis emptied (restarted without persistence): the machine's copy brings the records
    back, written to Redis again at the next lock."""
    ledger = _ledger(redis_url, tmp_path)
    value = WatchState(rentals=[_rental(id="kept", status="pending")])
    with ledger.locked():
        ledger.write(value)
    redis.Redis.from_url(redis_url).flushall()
    assert ledger.read(WatchState) == value
    with ledger.locked():
        ledger.read(WatchState)
    other = _ledger(redis_url, tmp_path / "elsewhere")
    assert other.read(WatchState) == value


def test_merging_keeps_remote_records_and_adds_the_more_settled() -> None:
    """Records only the copy knows are added; a record's more settled status wins."""
    remote = WatchState(rentals=[_rental(id="a", status="pending"), _rental(id="b")])
    local = WatchState(
        rentals=[_rental(id="a", status="rented", order_id=3), _rental(id="c", status="void")]
    )
    merged, changed = merge_rentals(remote, local)
    assert changed
    assert merged is not None
    assert [(r.id, r.status) for r in merged.rentals] == [
        ("a", "rented"), ("b", "pending"), ("c", "void"),
    ]  # fmt: skip
    assert merge_rentals(WatchState(rentals=[_rental(id="a", status="void")]),
                         WatchState(rentals=[_rental(id="a")]))[1] is False  # fmt: skip


def test_an_intent_is_in_flight_while_its_owner_s_lease_lives(
    redis_url: str, tmp_path: Path
) -> None:
    """Another machine's pending intent is in flight while its owner key lives, whatever
    PID it names; reconcile leaves it alone then and settles it after."""
    ledger = _ledger(redis_url, tmp_path)
    rental = _rental(owner="remote-loop", pid=1)  # PID 1 runs here: it says nothing
    server = redis.Redis.from_url(redis_url)
    server.set(owner_key("d1g3st", "remote-loop"), "1", px=60_000)
    assert ledger.in_flight(rental, T0 + 1, 900.0)
    assert reconcile([rental], [], T0 + 61, in_flight=ledger.in_flight) == []
    server.delete(owner_key("d1g3st", "remote-loop"))
    assert not ledger.in_flight(rental, T0 + 1, 900.0)
    assert [r.status for r in reconcile([rental], [], T0 + 61, in_flight=ledger.in_flight)] == [
        "void"
    ]


def test_writing_a_live_loop_s_intent_publishes_its_lease(redis_url: str, tmp_path: Path) -> None:
    """A pending intent of a loop of this process gets an owner key with a lease, before the
    intent is visible; the key goes when the loop ends."""
    ledger = _ledger(redis_url, tmp_path)
    owner = new_owner()
    try:
        with ledger.locked():
            ledger.write(WatchState(rentals=[_rental(owner=owner)]))
        left = redis.Redis.from_url(redis_url).pttl(owner_key("d1g3st", owner))
        assert 0 < left <= 10_000
        assert ledger.in_flight(_rental(owner=owner), T0, 900.0)
    finally:
        release_owner(owner)


def test_ledger_entries_are_named_by_the_key_s_hash(redis_url: str, tmp_path: Path) -> None:
    """A watch's ledger key names the key's digest and the file, never the API key."""
    client = Clore(KEY, base_url="http://127.0.0.1:9/v1", pacing=Pacing(url=redis_url))
    state = shared_state(StateFile(tmp_path / "watch-abc.json"), client)
    assert isinstance(state, FleetStateFile)
    assert state.key == ledger_keys(client._ctx.pacer.store.digest, "watch-abc.json")[0]
    assert KEY not in state.key


def test_a_watch_keeps_its_ledger_where_its_client_paces(redis_url: str, tmp_path: Path) -> None:
    """Watcher(state=StateFile(...)) with a fleet client uses the fleet's ledger; with a
    local client the file itself."""
    fleet = Clore(KEY, base_url="http://127.0.0.1:9/v1", pacing=Pacing(url=redis_url))
    local = Clore(KEY, base_url="http://127.0.0.1:9/v1", clock=ManualClock(T0))
    path = tmp_path / "watch-w.json"
    assert isinstance(Watcher(fleet, ManualClock(T0), state=StateFile(path)).state, FleetStateFile)
    kept = Watcher(local, ManualClock(T0), state=StateFile(path)).state
    assert type(kept) is StateFile
    assert kept.path == path
