"""Pacing waits exactly as long as the per-key limits require, shared by threads and processes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from clore import Clore, Pacing
from clore._clock import ManualClock
from clore._pacing import (
    MAX_SPOT_ENTRIES,
    FileStore,
    MemoryStore,
    Pacer,
    PacingState,
    current_penalty,
    delay,
    make_pacer,
    state_file,
)
from clore._paths import cache_dir

T0 = 1_700_000_000.0
CFG = Pacing()
KEY = "pacing-test-key"


# --------------------------------------------------------------------------- the pure rule


def test_first_request_goes_at_once() -> None:
    """With no history there is nothing to wait for."""
    assert delay(PacingState(), T0, "request", CFG) == 0.0


def test_next_request_waits_the_rest_of_the_interval_plus_margin() -> None:
    """A request 0.4 s after the last answer waits the remaining 0.6 s plus the margin."""
    state = PacingState(last_request=T0)
    assert delay(state, T0 + 0.4, "request", CFG) == pytest.approx(0.61)
    assert delay(state, T0 + 1.01, "request", CFG) == pytest.approx(0.0)
    assert delay(state, T0 + 5, "request", CFG) == 0.0


def test_create_order_waits_five_seconds_after_the_last_create() -> None:
    """create_order is spaced 5 s from the previous create, other requests only 1 s."""
    state = PacingState(last_request=T0 + 2, last_create=T0)
    assert delay(state, T0 + 3.5, "create", CFG) == pytest.approx(1.51)
    assert delay(state, T0 + 3.5, "request", CFG) == 0.0


def test_history_from_the_future_never_blocks_longer_than_one_interval() -> None:
    """A clock stepped back cannot make a request wait more than one interval."""
    state = PacingState(last_request=T0 + 3600, last_create=T0 + 3600)
    assert delay(state, T0, "request", CFG) == pytest.approx(1.01)
    assert delay(state, T0, "create", CFG) == pytest.approx(5.01)


def test_intervals_are_configurable() -> None:
    """Pacing(min_interval=3) spaces requests 3 s apart (like the vendor's TS client)."""
    cfg = Pacing(min_interval=3.0, margin=0.0)
    assert delay(PacingState(last_request=T0), T0 + 1, "request", cfg) == pytest.approx(2.0)


def test_disabled_pacing_never_waits() -> None:
    """Pacing.disabled() turns every wait off."""
    state = PacingState(last_request=T0, last_create=T0)
    assert delay(state, T0, "create", Pacing.disabled()) == 0.0
    pacer = Pacer(Pacing.disabled(), MemoryStore())
    assert [pacer.reserve("request", T0) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_negative_intervals_are_refused() -> None:
    """A negative interval is a ValueError."""
    with pytest.raises(ValueError, match="min_interval"):
        Pacing(min_interval=-1)


def test_penalty_after_429_widens_the_interval_then_fades() -> None:
    """Each 429 adds a tenth of the interval (up to doubling it); it halves every 120 s."""
    pacer = Pacer(CFG, MemoryStore())
    pacer.complete("request", T0, rate_limited=True)
    pacer.complete("request", T0, rate_limited=True)
    state = pacer.store.transact(lambda s: s)
    assert current_penalty(state, T0) == pytest.approx(0.2)
    assert delay(state, T0, "request", CFG) == pytest.approx(1.21)
    assert current_penalty(state, T0 + 120) == pytest.approx(0.1)
    for _ in range(30):
        pacer.complete("request", T0, rate_limited=True)
    assert current_penalty(state, T0) == pytest.approx(1.0)


# --------------------------------------------------------------------------- reserve / complete


def test_reserve_takes_a_free_slot_and_reports_the_wait_otherwise() -> None:
    """reserve() returns 0 and records the slot when free, else the wait and records nothing."""
    pacer = Pacer(CFG, MemoryStore())
    assert pacer.reserve("request", T0) == 0.0
    pacer.complete("request", T0 + 0.2)
    assert pacer.reserve("request", T0 + 0.5) == pytest.approx(0.71)
    assert pacer.reserve("request", T0 + 1.21) == 0.0


def test_interval_counts_from_the_answer_not_the_send() -> None:
    """A slow answer pushes the next slot: the server may have counted it that late."""
    pacer = Pacer(CFG, MemoryStore())
    pacer.reserve("request", T0)
    pacer.complete("request", T0 + 0.8)
    assert pacer.reserve("request", T0 + 1.01) == pytest.approx(0.8)


def test_a_request_in_flight_holds_the_key_until_answered() -> None:
    """While another request is on the wire, the next one polls instead of going."""
    pacer = Pacer(CFG, MemoryStore())
    pacer.reserve("request", T0, hold=30.0)
    assert 0 < pacer.reserve("request", T0 + 2.0) <= 0.05
    pacer.complete("request", T0 + 2.5)
    assert pacer.reserve("request", T0 + 3.51) == 0.0


def test_a_dead_requests_hold_expires_after_its_timeout() -> None:
    """A hold whose process died ends when that request's own timeout passes."""
    pacer = Pacer(CFG, MemoryStore())
    pacer.reserve("request", T0, hold=5.0)
    assert pacer.reserve("request", T0 + 5.0) == 0.0


def test_threads_never_share_a_slot() -> None:
    """Many threads reserving at the same instant get exactly one slot between them."""
    pacer = Pacer(CFG, MemoryStore())
    results: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        wait = pacer.reserve("request", T0)
        with lock:
            results.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(0.0) == 1


# --------------------------------------------------------------------------- the shared file


def test_state_file_is_named_by_a_hash_of_the_key(tmp_path: Path) -> None:
    """The file name is sha256(key)[:16]; the key appears neither in the name nor the content."""
    path = state_file(KEY, tmp_path)
    assert path.name == hashlib.sha256(KEY.encode()).hexdigest()[:16] + ".json"
    Pacer(CFG, FileStore(path)).reserve("request", T0)
    assert KEY not in path.read_text()
    assert state_file(None, tmp_path).name == "anonymous.json"


def test_state_file_is_private(tmp_path: Path) -> None:
    """The pacing file is created with mode 0600."""
    path = state_file(KEY, tmp_path / "pacing")
    Pacer(CFG, FileStore(path)).reserve("request", T0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_two_stores_on_one_file_share_the_history(tmp_path: Path) -> None:
    """Two pacers on the same file (two processes) see each other's requests."""
    path = state_file(KEY, tmp_path)
    first, second = Pacer(CFG, FileStore(path)), Pacer(CFG, FileStore(path))
    assert first.reserve("request", T0) == 0.0
    first.complete("request", T0)
    assert second.reserve("request", T0 + 0.5) == pytest.approx(0.51)


def test_two_stores_on_one_file_share_the_create_window(tmp_path: Path) -> None:
    """A create_order answered in one process spaces the next create in another by 5 s."""
    path = state_file(KEY, tmp_path)
    first, second = Pacer(CFG, FileStore(path)), Pacer(CFG, FileStore(path))
    assert first.reserve("create", T0) == 0.0
    first.complete("create", T0 + 0.5)
    assert second.reserve("create", T0 + 2.0) == pytest.approx(3.51)
    assert second.reserve("request", T0 + 2.0) == 0.0


def test_two_stores_on_one_file_share_the_request_in_flight(tmp_path: Path) -> None:
    """A request on the wire through one store holds the key for every store on the file."""
    path = state_file(KEY, tmp_path)
    first, second = Pacer(CFG, FileStore(path)), Pacer(CFG, FileStore(path))
    assert first.reserve("request", T0, hold=30.0) == 0.0
    assert 0 < second.reserve("request", T0 + 3.0) <= 0.05
    first.complete("request", T0 + 3.0)
    assert second.reserve("request", T0 + 4.01) == 0.0


def test_two_stores_on_one_file_share_the_429_penalty(tmp_path: Path) -> None:
    """A 429 answered in one process widens the interval of the next request in another."""
    path = state_file(KEY, tmp_path)
    first, second = Pacer(CFG, FileStore(path)), Pacer(CFG, FileStore(path))
    first.reserve("request", T0)
    first.complete("request", T0, rate_limited=True)
    assert second.reserve("request", T0 + 1.05) == pytest.approx(0.06, abs=0.001)
    second.penalize(T0 + 1.05)  # a code-5 answer: the penalty grows to 0.2 s
    third = Pacer(CFG, FileStore(path))
    assert third.reserve("request", T0 + 1.1) == pytest.approx(0.11, abs=0.001)


def test_a_plain_request_does_not_start_the_create_window() -> None:
    """Only create_order moves the 5 s window: a create right after a read waits 1 s."""
    pacer = Pacer(CFG, MemoryStore())
    assert pacer.reserve("request", T0) == 0.0
    pacer.complete("request", T0 + 0.2)
    assert pacer.reserve("create", T0 + 1.21) == 0.0
    pacer.complete("create", T0 + 1.3)
    assert pacer.reserve("request", T0 + 2.31) == 0.0
    pacer.complete("request", T0 + 2.4)
    assert pacer.reserve("create", T0 + 3.41) == pytest.approx(2.9)
    assert delay(PacingState(last_request=T0), T0 + 1.01, "create", CFG) == 0.0


def test_each_key_gets_its_own_state_file(tmp_path: Path) -> None:
    """state_file() is one file per key, another for no key, the same for the same key."""
    names = {state_file(key, tmp_path) for key in ("key-a", "key-b", None)}
    assert len(names) == 3
    assert state_file("key-a", tmp_path) == state_file("key-a", tmp_path)
    assert state_file("", tmp_path) == state_file(None, tmp_path)


def test_clients_of_different_keys_pace_in_different_files() -> None:
    """make_pacer() names the file by the client's key: two keys never share a bucket."""
    paths = []
    for key in ("key-a", "key-b"):
        store = make_pacer(CFG, key, use_file=True).store
        assert isinstance(store, FileStore)
        paths.append(store.path)
    assert [state_file(k, cache_dir() / "pacing") for k in ("key-a", "key-b")] == paths
    first = make_pacer(CFG, "key-a", use_file=True)
    assert first.reserve("request", T0) == 0.0
    assert make_pacer(CFG, "key-b", use_file=True).reserve("request", T0) == 0.0
    assert make_pacer(CFG, "key-a", use_file=True).reserve("request", T0) > 0


def test_other_keys_have_their_own_bucket(tmp_path: Path) -> None:
    """Requests of another key do not delay this key."""
    first = Pacer(CFG, FileStore(state_file("key-a", tmp_path)))
    second = Pacer(CFG, FileStore(state_file("key-b", tmp_path)))
    first.reserve("request", T0)
    assert second.reserve("request", T0) == 0.0


@pytest.mark.parametrize("content", [b"{not json", b"[1,2]", b'{"last_request": "x"}', b""])
def test_corrupt_state_file_is_a_fresh_history(tmp_path: Path, content: bytes) -> None:
    """A corrupt, empty or oddly typed state file is read as no history and rewritten."""
    path = state_file(KEY, tmp_path)
    path.write_bytes(content)
    pacer = Pacer(CFG, FileStore(path))
    assert pacer.reserve("request", T0) == 0.0
    assert json.loads(path.read_text())["last_request"] == T0


def test_spot_history_survives_the_file_round_trip(tmp_path: Path) -> None:
    """Spot bids and lowering times written by one pacer are read by another."""
    path = state_file(KEY, tmp_path)
    Pacer(CFG, FileStore(path)).note_bid(5, 0.002, T0)
    Pacer(CFG, FileStore(path)).note_bid(5, 0.001, T0 + 10)
    assert Pacer(CFG, FileStore(path)).spot_wait(5, 0.0009, T0 + 20) == pytest.approx(590)


def test_spot_times_are_stored_as_server_time_under_their_own_keys(tmp_path: Path) -> None:
    """The shared file names spot times `*_server`; a file's older client-clock
    `lowered_at` is not taken for server time (at worst the server refuses once)."""
    path = state_file(KEY, tmp_path)
    Pacer(CFG, FileStore(path)).note_bid(5, 0.002, T0)
    Pacer(CFG, FileStore(path)).note_bid(5, 0.001, T0 + 10)
    entry = json.loads(path.read_text())["spot"]["5"]
    assert entry == {"bid": 0.001, "lowered_at_server": T0 + 10, "seen_at_server": T0 + 10}
    old = {"spot": {"7": {"bid": 0.002, "lowered_at": T0, "seen_at": T0}}}
    path.write_text(json.dumps(old))
    assert Pacer(CFG, FileStore(path)).spot_wait(7, 0.001, T0 + 1) == 0.0


def test_spot_history_keeps_the_most_recently_seen_orders() -> None:
    """Past MAX_SPOT_ENTRIES orders the least recently seen is forgotten."""
    pacer = Pacer(CFG, MemoryStore())
    for order_id in range(MAX_SPOT_ENTRIES + 1):
        pacer.note_bid(order_id, 0.002, T0 + order_id)
    pacer.observe_bids({9999: 0.001}, T0 + 1000)  # full: not added
    spot = pacer.store.transact(lambda state: dict(state.spot))
    assert sorted(spot, key=int) == [str(i) for i in range(1, MAX_SPOT_ENTRIES + 1)]
    pacer.note_bid(1, 0.001, T0 + 2000)  # a lowering of a kept order is still remembered
    assert pacer.spot_wait(1, 0.0005, T0 + 2100) == pytest.approx(500)


# --------------------------------------------------------------------------- through the client


def test_no_sleep_after_a_call(client: Clore, clock: ManualClock) -> None:
    """A single call returns without sleeping; waits happen only before a later call."""
    client.wallets()
    assert clock.slept == []
    clock.advance(10)
    client.wallets()
    assert clock.slept == []
