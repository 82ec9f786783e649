"""Pacing through the client against the sandbox's own rate limits and spot rules.

(These replace the tests of test_sdk_pacing.py that ran against the in-memory fake API;
the sandbox enforces the same windows: 1 s between a key's accepted requests, 5 s between
its accepted create_order calls, one spot lowering per 600 s.)
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from _stub.wire import Wire, free_server, mine, rent, spot_price
from clore import Clore, Pacing, SpotPriceLoweringTooSoonError
from clore._clock import ManualClock, SystemClock
from clore._pacing import FileStore, MemoryStore, Pacer, make_pacer, state_file
from clore._paths import cache_dir
from clore.sandbox import BASE_URL, Sandbox

CFG = Pacing()
T0 = 1_700_000_000.0


def _bid(sandbox: Sandbox) -> tuple[int, float]:
    """A spot offer of the demo user at twice its server's minimum: (order id, bid)."""
    sid = free_server(sandbox, spot=True)
    price = spot_price(sandbox, sid) * 2
    return rent(sandbox, sid, spot=True, spotprice=price), price


def test_a_read_then_create_order_sleeps_one_interval(
    sandbox: Sandbox, wire: Wire, client: Clore, clock: ManualClock
) -> None:
    """Through the client, create_order after wallets waits 1.01 s, not the create window."""
    client.wallets()
    client.create_order(free_server(sandbox), "img")
    assert clock.slept[0] == pytest.approx(1.01)
    assert wire.rejected == 0


def test_an_unwritable_cache_dir_falls_back_to_pacing_in_memory(
    tmp_path: Path,
    sandbox: Sandbox,
    wire: Wire,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the state file cannot be created, calls still work and stay paced in-process."""
    key = sandbox.demo_key
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    pacer = Pacer(CFG, FileStore(state_file(key, blocker / "pacing")))
    assert pacer.reserve("request", T0) == 0.0
    pacer.complete("request", T0)
    assert pacer.reserve("request", T0 + 0.5) == pytest.approx(0.51)
    assert "pacing within this process only" in caplog.text
    client = Clore(
        key, base_url=BASE_URL, transport=wire.transport(), clock=clock, pacing=Pacing(shared=True)
    )
    client._ctx.pacer.store = FileStore(state_file(key, blocker / "pacing"))
    client.wallets()
    client.wallets()
    assert wire.rejected == 0 and len(wire.seen) == 2


def test_real_clock_clients_share_a_file_and_manual_clocks_do_not(sandbox: Sandbox) -> None:
    """The pacer uses the cache-dir file with the real clock, memory with an injected one."""
    key = sandbox.demo_key
    real = Clore(key, base_url=BASE_URL, transport=sandbox.transport())
    manual = Clore(key, base_url=BASE_URL, transport=sandbox.transport(), clock=ManualClock())
    assert isinstance(real._ctx.pacer.store, FileStore)
    assert real._ctx.pacer.store.path.parent == cache_dir() / "pacing"
    assert isinstance(manual._ctx.pacer.store, MemoryStore)
    told = Clore(
        key, clock=ManualClock(), pacing=Pacing(shared=True), transport=sandbox.transport()
    )
    assert isinstance(told._ctx.pacer.store, FileStore)
    assert isinstance(make_pacer(CFG, key, use_file=False).store, MemoryStore)
    assert isinstance(SystemClock(), SystemClock)


def test_client_spaces_calls_by_exactly_the_interval(
    wire: Wire, client: Clore, clock: ManualClock
) -> None:
    """Five reads sleep 1.01 s between each other and the sandbox rejects none."""
    for _ in range(5):
        client.wallets()
    assert clock.slept == pytest.approx([1.01] * 4)
    assert wire.rejected == 0
    times = [seen.at for seen in wire.seen]
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([1.01] * 4)


def test_create_orders_are_five_seconds_apart(sandbox: Sandbox, wire: Wire, client: Clore) -> None:
    """Two create_order calls reach the sandbox at least 5 s apart and none is rejected."""
    client.create_order(free_server(sandbox), "img")
    client.create_order(free_server(sandbox), "img")
    creates = [seen.at for seen in wire.sent("create_order")]
    assert creates[1] - creates[0] >= 5.0
    assert wire.rejected == 0 and len(mine(sandbox)) == 2


def test_two_clients_on_one_key_share_the_pacing_file(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """Two clients told to share the file never get a 429 from interleaved calls."""
    shared = Pacing(shared=True)
    key = sandbox.demo_key
    one = Clore(key, base_url=BASE_URL, transport=wire.transport(), clock=clock, pacing=shared)
    two = Clore(key, base_url=BASE_URL, transport=wire.transport(), clock=clock, pacing=shared)
    for _ in range(3):
        one.wallets()
        two.my_orders()
    assert wire.rejected == 0
    assert len(wire.seen) == 6


def test_unexpected_429_widens_later_waits(
    sandbox: Sandbox, wire: Wire, client: Clore, clock: ManualClock
) -> None:
    """After the sandbox answers 429 anyway, the client retries and spaces calls wider."""
    sandbox.inject_fault("wallets", "rate_limit")
    client.wallets()
    client.wallets()
    assert [s.status for s in wire.seen] == [429, 200, 200]
    assert clock.slept[-1] == pytest.approx(1.11, abs=0.005)


def test_spot_lowering_within_600_s_fails_locally_without_a_request(
    sandbox: Sandbox, wire: Wire, client: Clore, clock: ManualClock
) -> None:
    """A second lowering inside 600 s raises locally with the seconds left; nothing is sent."""
    order, bid = _bid(sandbox)
    client.my_orders()  # pacing learns the current bid
    client.set_spot_price(order, bid * 0.95)
    clock.advance(100)
    sent = len(wire.seen)
    with pytest.raises(SpotPriceLoweringTooSoonError) as info:
        client.set_spot_price(order, bid * 0.9)
    assert len(wire.seen) == sent
    assert info.value.local is True
    assert info.value.time_to_lowering == pytest.approx(500, abs=2)
    assert "no request sent" in str(info.value)


def test_raising_a_spot_price_is_never_held_back(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """Raising a bid right after lowering it is sent at once."""
    order, bid = _bid(sandbox)
    client.my_orders()
    client.set_spot_price(order, bid * 0.95)
    client.set_spot_price(order, bid * 1.5)
    assert [s.body["desired_price"] for s in wire.sent("set_spot_price")] == [
        bid * 0.95,
        bid * 1.5,
    ]
    assert [s.code for s in wire.sent("set_spot_price")] == [0, 0]


def test_server_reported_lowering_window_is_remembered(
    sandbox: Sandbox, wire: Wire, client: Clore, clock: ManualClock
) -> None:
    """After the API says `time_to_lowering`, the next early lowering is refused locally."""
    order, bid = _bid(sandbox)
    with sandbox.client() as elsewhere:  # another process lowered it 300 s ago
        elsewhere.set_spot_price(order, bid * 0.95)
    clock.advance(300)
    with pytest.raises(SpotPriceLoweringTooSoonError) as first:
        client.set_spot_price(order, bid * 0.9)
    assert first.value.local is False and first.value.time_to_lowering == 300
    client.my_orders()
    clock.advance(60)
    with pytest.raises(SpotPriceLoweringTooSoonError) as second:
        client.set_spot_price(order, bid * 0.9)
    assert second.value.local is True
    assert len(wire.sent("set_spot_price")) == 1


def test_lowering_is_allowed_again_after_600_s(
    sandbox: Sandbox, client: Clore, clock: ManualClock
) -> None:
    """Once 600 s have passed since the last lowering, the next one is sent."""
    order, bid = _bid(sandbox)
    client.my_orders()
    client.set_spot_price(order, bid * 0.95)
    clock.advance(600)
    client.set_spot_price(order, bid * 0.9)
    assert [o.price for o in mine(sandbox)] == [pytest.approx(bid * 0.9)]
