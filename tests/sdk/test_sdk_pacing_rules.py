"""The edges of pacing's rules and of its stores: boundaries, fields that must round-trip,
holds of dead processes, the shared file's reading and writing (found by mutation testing)."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path

import pytest

import clore._pacing as pacing
import clore._pacing_store as store
from clore import ConfigError, Pacing
from clore._holder import Holder, this_process
from clore._pacing import (
    INFLIGHT_POLL,
    MAX_HOLD,
    MAX_SPOT_ENTRIES,
    Pacer,
    PacingState,
    SpotState,
    delay,
    spot_lowering_wait,
)
from clore._pacing_redis import RedisPacer
from clore._pacing_store import FileStore, MemoryStore, make_pacer, release_dead_hold, state_file
from clore._redis import key_digest as store_digest

T0 = 1_700_000_000.0
CFG = Pacing()
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the shared file is POSIX only")


def spot_of(pacer: Pacer) -> dict[str, SpotState]:
    return pacer.store.transact(lambda state: dict(state.spot))


# --------------------------------------------------------------------------- the module


def test_the_stores_stay_importable_from_the_pacing_module() -> None:
    """clore._pacing hands out the stores of clore._pacing_store and refuses other names."""
    names = ("FileStore", "MemoryStore", "make_pacer", "release_dead_hold", "state_file")
    assert [getattr(pacing, name) for name in names] == [getattr(store, name) for name in names]
    with pytest.raises(AttributeError, match=re.escape("'clore._pacing' has no attribute 'nope'")):
        pacing.nope  # noqa: B018


# --------------------------------------------------------------------------- Pacing


def test_disabled_pacing_has_no_intervals_and_keeps_nothing_in_a_file() -> None:
    """Pacing.disabled() is zero intervals, no margin, memory only, turned off."""
    expected = Pacing(0.0, 0.0, 0.0, 0.0, shared=False, enabled=False)
    assert Pacing.disabled() == expected


@pytest.mark.parametrize("value", [True, "1", None, float("nan"), float("inf"), -0.5])
def test_an_interval_must_be_a_finite_non_negative_number(value: object) -> None:
    """Booleans, strings, None, NaN, infinity and negatives are refused with a ValueError."""
    with pytest.raises(ValueError, match=r"Pacing.min_interval must be a finite number >= 0"):
        Pacing(min_interval=value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- delay


def test_a_hold_of_exactly_the_longest_hold_still_holds_the_key() -> None:
    """A request in flight for exactly MAX_HOLD seconds holds the key; a longer one does not."""
    state = PacingState(inflight_until=T0 + MAX_HOLD)
    held = delay(state, T0, "request", CFG)
    state.inflight_until = T0 + MAX_HOLD + 1
    assert (held, delay(state, T0, "request", CFG)) == (INFLIGHT_POLL, 0.0)


def test_a_429_penalty_is_a_tenth_of_the_configured_interval() -> None:
    """With a 2 s interval one 429 adds 0.2 s to the next wait."""
    pacer = Pacer(Pacing(min_interval=2.0, margin=0.0), MemoryStore())
    pacer.reserve("request", T0)
    pacer.complete("request", T0, rate_limited=True)
    assert pacer.reserve("request", T0) == pytest.approx(2.2)


def test_a_negative_penalty_read_from_a_file_never_shortens_an_interval() -> None:
    """A penalty below zero (a hand-edited file) counts as no penalty."""
    state = PacingState(last_request=T0, penalty=-5.0, penalty_at=T0)
    assert delay(state, T0, "request", CFG) == pytest.approx(1.01)


# --------------------------------------------------------------------------- reserve / complete


def test_a_short_timeout_holds_the_key_only_that_long() -> None:
    """A request reserved with a 0.5 s timeout stops holding the key after 0.5 s."""
    pacer = Pacer(Pacing(min_interval=0.0, margin=0.0), MemoryStore())
    pacer.reserve("request", T0, hold=0.5)
    assert (pacer.reserve("request", T0 + 0.4), pacer.reserve("request", T0 + 0.6)) == (
        INFLIGHT_POLL,
        0.0,
    )


def test_an_answer_on_a_clock_stepped_back_never_moves_the_history_back() -> None:
    """create_order answered at an earlier time than recorded keeps the later times."""
    pacer = Pacer(CFG, MemoryStore())
    pacer.reserve("create", T0 + 100)
    pacer.complete("create", T0)
    state = pacer.store.transact(lambda s: s)
    assert (state.last_request, state.last_create) == (T0 + 100, T0 + 100)


# --------------------------------------------------------------------------- spot lowering


def test_pacing_turned_off_never_holds_a_lowering_back() -> None:
    """With pacing disabled, even a spot history that forbids a lowering allows it."""
    state = PacingState(spot={"7": SpotState(bid=1.0, lowered_at=T0, seen_at=T0)})
    off = Pacing(enabled=False)
    pacer = Pacer(off, MemoryStore())
    pacer.note_bid(7, 1.0, T0)
    pacer.note_bid(7, 0.9, T0 + 1)
    assert (spot_lowering_wait(state, 7, 0.5, T0 + 1, off), pacer.spot_wait(7, 0.5, T0 + 2)) == (
        0.0,
        0.0,
    )


def test_a_zero_spot_interval_never_holds_a_lowering_back() -> None:
    """spot_lower_interval=0 allows every lowering, even after one stamped in the future."""
    state = PacingState(spot={"7": SpotState(bid=1.0, lowered_at=T0 + 50, seen_at=T0)})
    assert spot_lowering_wait(state, 7, 0.5, T0, Pacing(spot_lower_interval=0.0)) == 0.0


def test_a_sub_second_spot_interval_is_still_applied() -> None:
    """A 0.5 s spot interval holds a lowering back for the rest of that half second."""
    state = PacingState(spot={"7": SpotState(bid=1.0, lowered_at=T0, seen_at=T0)})
    wait = spot_lowering_wait(state, 7, 0.5, T0 + 0.2, Pacing(spot_lower_interval=0.5))
    assert wait == pytest.approx(0.3)


def test_asking_for_the_current_bid_again_is_not_a_lowering() -> None:
    """Right after a lowering, the same bid is allowed and noting it starts no new window."""
    pacer = Pacer(CFG, MemoryStore())
    pacer.note_bid(7, 1.0, T0)
    pacer.note_bid(7, 0.9, T0 + 10)
    before = pacer.spot_wait(7, 0.9, T0 + 20)
    pacer.note_bid(7, 0.9, T0 + 300)
    assert (before, pacer.spot_wait(7, 0.8, T0 + 610)) == (0.0, 0.0)


def test_exactly_max_spot_entries_are_kept() -> None:
    """The spot history holds MAX_SPOT_ENTRIES orders before it forgets any."""
    pacer = Pacer(CFG, MemoryStore())
    for order_id in range(MAX_SPOT_ENTRIES):
        pacer.note_bid(order_id, 0.002, T0 + order_id)
    assert len(spot_of(pacer)) == MAX_SPOT_ENTRIES


def test_the_least_recently_seen_order_is_forgotten_not_the_lowest_id() -> None:
    """Eviction follows when an order was last seen, whatever its id sorts like."""
    pacer = Pacer(CFG, MemoryStore())
    # Ids whose text order ("10" < "9") differs from the order they were seen in.
    ids = list(range(9, 9 + MAX_SPOT_ENTRIES))
    for n, order_id in enumerate(ids):
        pacer.note_bid(order_id, 0.002, T0 + n)
    pacer.note_bid(100_000, 0.002, T0 + 10_000)
    kept = spot_of(pacer)
    assert ("9" in kept, "10" in kept, len(kept)) == (False, True, MAX_SPOT_ENTRIES)


def test_a_bid_seen_in_my_orders_counts_as_recently_seen() -> None:
    """An order observed in my_orders, new or known, outlives orders seen before it."""
    pacer = Pacer(CFG, MemoryStore())
    for order_id in range(MAX_SPOT_ENTRIES - 1):
        pacer.note_bid(order_id, 0.002, T0 + order_id)
    pacer.observe_bids({0: 0.002, 5000: 0.003}, T0 + 1000)  # 0 known, 5000 new
    pacer.note_bid(6000, 0.002, T0 + 1001)
    pacer.note_bid(6001, 0.002, T0 + 1002)
    kept = spot_of(pacer)
    assert (kept["0"].seen_at, kept["5000"].seen_at, "1" in kept, "2" in kept) == (
        T0 + 1000,
        T0 + 1000,
        False,
        False,
    )


def test_spot_wait_of_a_disabled_pacer_is_zero() -> None:
    """A pacer with pacing off never asks a lowering to wait."""
    assert Pacer(Pacing.disabled(), MemoryStore()).spot_wait(7, 0.1, T0) == 0.0


# --------------------------------------------------------------------------- the file's form


def test_every_field_of_the_history_survives_the_json_round_trip() -> None:
    """to_json then from_json gives back the same history, holder and spot entries included."""
    state = PacingState(
        last_request=T0 + 1,
        last_create=T0 + 2,
        inflight_until=T0 + 3,
        penalty=0.3,
        penalty_at=T0 + 4,
        spot={"7": SpotState(bid=0.5, lowered_at=T0 + 5, seen_at=T0 + 6)},
        holder=Holder(pid=42, host="h", boot="b", pidns="ns", started=9, kind="create"),
    )
    assert PacingState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_missing_fields_read_as_a_fresh_history() -> None:
    """A file with none of the fields (or only an empty spot entry) is a fresh history."""
    fresh = PacingState.from_json({"spot": {"7": {}}})
    assert (PacingState.from_json({}), fresh.spot["7"]) == (PacingState(), SpotState())


# --------------------------------------------------------------------------- choosing a store


def test_make_pacer_keeps_the_history_in_memory_unless_a_file_can_serve() -> None:
    """A file only when asked for, with pacing on; memory otherwise."""
    kinds = [
        type(make_pacer(config, "key", use_file=use_file).store).__name__
        for config, use_file in ((CFG, True), (CFG, False), (Pacing.disabled(), True))
    ]
    expected = ["FileStore" if sys.platform != "win32" else "MemoryStore", "MemoryStore"]
    assert kinds == [*expected, "MemoryStore"]


def test_make_pacer_keeps_the_history_in_memory_on_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Windows has no shared file (no flock there): the history stays in memory."""
    monkeypatch.setattr(sys, "platform", "win32")
    assert isinstance(make_pacer(CFG, "key", use_file=True).store, MemoryStore)


# --------------------------------------------------------------------------- dead holders


def dead_holder(kind: str = "request") -> Holder:
    """This machine's identity with a PID no process can have (above any pid_max)."""
    me = this_process()
    return Holder(pid=2**31 - 1, host=me.host, boot=me.boot, pidns=me.pidns, kind=kind)


linux_only = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="needs /proc to tell a process is gone"
)


@linux_only
def test_a_dead_holders_expired_hold_moves_no_interval() -> None:
    """A hold that ended at or before now is left as it is: its answer time is not now."""
    state = PacingState(last_request=T0, inflight_until=T0 + 5, holder=dead_holder())
    release_dead_hold(state, T0 + 5)
    assert (state.last_request, state.holder) == (T0, dead_holder())


@linux_only
def test_releasing_a_dead_hold_never_moves_the_history_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A release on a clock behind the history keeps the later times, and says so in the log."""
    state = PacingState(
        last_request=T0 + 50,
        last_create=T0 + 50,
        inflight_until=T0 + 60,
        holder=dead_holder("create"),
    )
    with caplog.at_level(logging.DEBUG, logger="clore"):
        release_dead_hold(state, T0)
    assert (state.last_request, state.last_create, state.holder, state.inflight_until) == (
        T0 + 50,
        T0 + 50,
        None,
        None,
    )
    expected = f"pacing: released the hold of process {2**31 - 1}, which no longer runs"
    assert expected in caplog.messages


@linux_only
def test_only_a_store_given_now_releases_a_dead_hold(tmp_path: Path) -> None:
    """The file store releases a dead process's hold when asked to reserve, not on every read."""
    path = tmp_path / "pacing.json"
    held = PacingState(last_request=T0, inflight_until=T0 + 30, holder=dead_holder())
    path.write_text(json.dumps(held.to_json()))
    fs = FileStore(path)
    read = fs.transact(lambda s: s.holder)
    released = fs.transact(lambda s: s.holder, now=T0 + 1)
    assert (read, released) == (dead_holder(), None)


# --------------------------------------------------------------------------- the shared file


@posix_only
def test_a_state_file_longer_than_one_read_is_read_whole(tmp_path: Path) -> None:
    """A history padded past 64 KiB (whitespace is valid JSON) is still read whole."""
    path = tmp_path / "pacing.json"
    path.write_bytes(json.dumps(PacingState(last_request=T0).to_json()).encode() + b" " * 70_000)
    assert Pacer(CFG, FileStore(path)).reserve("request", T0 + 0.5) == pytest.approx(0.51)


@posix_only
def test_a_rewritten_state_file_holds_exactly_the_new_history(tmp_path: Path) -> None:
    """Writing a shorter history over a longer one leaves nothing of the old one behind."""
    path = tmp_path / "pacing.json"
    path.write_bytes(b" " * 5_000 + json.dumps(PacingState().to_json()).encode())
    Pacer(CFG, FileStore(path)).reserve("request", T0)
    written = json.loads(path.read_bytes())  # fails on trailing bytes of the old content
    assert (written["last_request"], path.read_bytes()[:1]) == (T0, b"{")


@posix_only
def test_reading_the_history_does_not_rewrite_the_file(tmp_path: Path) -> None:
    """A decision that changes nothing (a spot wait) leaves the file untouched."""
    path = tmp_path / "pacing.json"
    path.write_text(json.dumps(PacingState(last_request=T0).to_json()))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    Pacer(CFG, FileStore(path)).spot_wait(7, 0.1, T0)
    assert path.stat().st_mtime_ns == 1_000_000_000


@posix_only
def test_an_unusable_state_file_is_named_in_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The fallback to memory logs the file and the system's reason, once."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    path = state_file("key", blocker / "pacing")
    pacer = Pacer(CFG, FileStore(path))
    with caplog.at_level(logging.WARNING, logger="clore"):
        pacer.reserve("request", T0)
        pacer.complete("request", T0)
    expected = f"pacing: cannot use {path} (Not a directory); pacing within this process only"
    assert caplog.messages == [expected]


# --------------------------------------------------------------------------- a fleet's Redis


URL = "redis://127.0.0.1:1/0"  # never connected to: the store connects on first use


def test_a_pacing_url_is_checked_and_kept_trimmed() -> None:
    """Pacing(url=...) keeps a Redis URL trimmed, 'local' as it is, and refuses others
    naming Pacing.url."""
    assert (Pacing(url=f"  {URL} ").url, Pacing(url="local").url) == (URL, "local")
    with pytest.raises(ConfigError, match=r"^Pacing\.url: .* is not a Redis URL"):
        Pacing(url="http://127.0.0.1/")


def test_make_pacer_paces_through_the_fleets_redis_when_given_its_url() -> None:
    """A Pacing URL makes a Redis pacer for the key, on Redis's clock unless told otherwise."""
    config = Pacing(url=URL)
    fleet = make_pacer(config, "key", use_file=False)
    injected = make_pacer(config, "key", use_file=False, real_clock=False)
    assert isinstance(fleet, RedisPacer) and isinstance(injected, RedisPacer)
    assert (fleet.config, fleet.url, fleet.store.url, fleet.store.digest) == (
        config,
        URL,
        URL,
        store_digest("key"),
    )
    assert (fleet.server_clock, injected.server_clock) == (True, False)


def test_make_pacer_takes_the_fleet_url_from_the_environment_only_for_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CLORE_PACING_URL replaces the file; a client that would pace in memory ignores it,
    and CLORE_PACING=local or Pacing(url='local') keep the file."""
    monkeypatch.setenv("CLORE_PACING_URL", URL)
    from_env = make_pacer(CFG, "key", use_file=True)
    memory = make_pacer(CFG, "key", use_file=False)
    kept = make_pacer(Pacing(url="local"), "key", use_file=True)
    monkeypatch.setenv("CLORE_PACING", "local")
    local = make_pacer(CFG, "key", use_file=True)
    assert (isinstance(from_env, RedisPacer), from_env.url) == (True, URL)
    assert [type(p.store).__name__ for p in (memory, kept, local)] == [
        "MemoryStore",
        "FileStore" if sys.platform != "win32" else "MemoryStore",
        "FileStore" if sys.platform != "win32" else "MemoryStore",
    ]


def test_make_pacer_reads_the_named_profiles_fleet_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The profile a client was made for decides its fleet URL (not the active one)."""
    from clore import config as cfg

    cfg.set_profile("fleet", pacing_url=URL)
    cfg.set_profile("solo")
    cfg.use("solo")
    assert (
        isinstance(make_pacer(CFG, "key", use_file=True, profile="fleet"), RedisPacer),
        isinstance(make_pacer(CFG, "key", use_file=True).store, MemoryStore | FileStore),
    ) == (True, True)


def test_disabled_pacing_never_reaches_a_fleet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pacing turned off keeps nothing anywhere, whatever URL is configured."""
    monkeypatch.setenv("CLORE_PACING_URL", URL)
    off = Pacing(enabled=False, url=URL)
    assert isinstance(make_pacer(off, "key", use_file=True).store, MemoryStore)
