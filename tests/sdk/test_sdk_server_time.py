"""The server-clock estimate (clore._servertime) and Clore.server_time / time_scale."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate

import pytest

from _stub.scaled_clock import FakeRealClock, ScaledClock
from clore import AsyncClore, Clore
from clore._clock import ManualClock, SystemClock
from clore._servertime import ServerTime, clock_scale
from clore.sandbox import BASE_URL, Sandbox

SandboxFactory = Callable[..., Sandbox]

T0 = 1_700_000_000.0


def _sandbox(now: float, scale: float) -> dict[str, str]:
    return {"x-sandbox-now": f"{now:.6f}", "x-sandbox-time-scale": repr(scale)}


def test_before_any_response_the_estimate_is_the_client_clock() -> None:
    """With nothing learned yet, server time is the client's clock at scale 1."""
    clock = FakeRealClock(T0)
    server = ServerTime(clock)
    clock.advance(5)
    assert (server.now(), server.time_scale, server.source) == (T0 + 5, 1.0, "client")


def test_sandbox_headers_set_the_time_and_its_rate() -> None:
    """A scale-60 sandbox 2 h ahead: its time, then 60 server seconds per client second."""
    clock = FakeRealClock(T0)
    server = ServerTime(clock)
    server.observe(_sandbox(T0 + 7200, 60.0), clock.time())
    assert server.now() == T0 + 7200
    clock.advance(10)
    assert server.now() == T0 + 7200 + 600
    assert (server.time_scale, server.source) == (60.0, "sandbox")
    assert server.to_client_seconds(598) == pytest.approx(598 / 60)


def test_a_client_sharing_the_sandbox_clock_moves_at_rate_one() -> None:
    """A client whose own clock runs at the sandbox's scale (an in-process SimClock) gets 1."""

    class Sim(ManualClock):
        time_scale = 60.0

    clock = Sim(T0)
    server = ServerTime(clock)
    server.observe(_sandbox(T0, 60.0), clock.time())
    clock.advance(100)
    assert (server.now(), server.time_scale) == (T0 + 100, 1.0)


def test_two_manual_clocks_are_taken_to_move_together() -> None:
    """A sandbox on a ManualClock sends scale 0; a ManualClock client then uses rate 1."""
    clock = ManualClock(T0)
    server = ServerTime(clock)
    server.observe(_sandbox(T0 + 50, 0.0), clock.time())
    clock.advance(30)
    assert (server.now(), server.time_scale) == (T0 + 80, 1.0)


def test_a_stopped_sandbox_clock_stays_put_for_a_real_time_client() -> None:
    """Scale 0 seen by a real-time client: the estimate waits for the next response."""
    clock = FakeRealClock(T0)
    server = ServerTime(clock)
    server.observe(_sandbox(T0 + 50, 0.0), clock.time())
    clock.advance(30)
    assert (server.now(), server.time_scale) == (T0 + 50, 0.0)
    assert server.to_client_seconds(120) == 120  # waiting cannot help: poll again


def test_a_small_date_offset_is_ignored_and_a_large_one_is_used() -> None:
    """The Date header (1 s resolution) counts only when more than 5 s off the client."""
    clock = FakeRealClock(T0)
    server = ServerTime(clock)
    server.observe({"date": formatdate(T0 + 3, usegmt=True)}, clock.time())
    assert (server.now(), server.source) == (T0, "client")
    server.observe({"date": formatdate(T0 + 120, usegmt=True)}, clock.time())
    assert server.source == "date"
    assert server.now() == pytest.approx(T0 + 120.5)
    clock.advance(10)
    assert server.now() == pytest.approx(T0 + 130.5)


def test_sandbox_time_is_kept_when_a_response_lacks_its_headers() -> None:
    """Once a sandbox has spoken, a response without its headers changes nothing."""
    clock = FakeRealClock(T0)
    server = ServerTime(clock)
    server.observe(_sandbox(T0 + 3600, 60.0), clock.time())
    server.observe({"date": formatdate(T0, usegmt=True)}, clock.time())
    assert (server.now(), server.source) == (T0 + 3600, "sandbox")


def test_the_estimate_never_runs_backwards() -> None:
    """A later answer stamped slightly behind the extrapolation does not move time back."""
    clock = FakeRealClock(T0)
    server = ServerTime(clock)
    server.observe(_sandbox(T0, 60.0), clock.time())
    clock.advance(1)
    assert server.now() == T0 + 60
    server.observe(_sandbox(T0 + 59, 60.0), clock.time())
    assert server.now() == T0 + 60


@pytest.mark.parametrize(
    "headers",
    [
        {"x-sandbox-now": "soon", "x-sandbox-time-scale": "1"},
        {"x-sandbox-now": "nan", "x-sandbox-time-scale": "1"},
        {"x-sandbox-now": "1.0", "x-sandbox-time-scale": "-2"},
        {"x-sandbox-now": "1.0"},
        {"date": "yesterday"},
    ],
)
def test_unreadable_headers_are_ignored(headers: dict[str, str]) -> None:
    """Garbled time headers leave the estimate on the client's clock."""
    clock = FakeRealClock(T0)
    server = ServerTime(clock)
    server.observe(headers, clock.time())
    assert (server.now(), server.source) == (T0, "client")


def test_clock_scales_are_declared_by_the_clocks() -> None:
    """SystemClock is real time, ManualClock moves only when told, others count as 1."""
    assert (clock_scale(SystemClock()), clock_scale(ManualClock()), clock_scale(object())) == (
        1.0,
        0.0,
        1.0,
    )


def _ahead(
    sandbox_factory: SandboxFactory, clock: FakeRealClock, ahead: float, scale: float
) -> Sandbox:
    """An empty sandbox ``ahead`` seconds in the future, running ``scale`` times faster."""
    scaled = ScaledClock(clock, scale)
    scaled.advance(ahead)
    return sandbox_factory(seed=None, clock=scaled)


def test_clore_learns_server_time_from_every_response(sandbox_factory: SandboxFactory) -> None:
    """Clore.server_time and time_scale follow the headers of the last response."""
    clock = FakeRealClock(T0)
    sb = _ahead(sandbox_factory, clock, 86400, 600.0)
    with Clore(sb.demo_key, base_url=BASE_URL, transport=sb.transport(), clock=clock) as client:
        assert (client.server_time(), client.time_scale) == (T0, 1.0)
        client.wallets()
        received = clock.time()
        assert client.time_scale == 600.0
        clock.advance(2)
        assert client.server_time() == pytest.approx(T0 + 86400 + (received - T0 + 2) * 600)
        assert client.server_time() == pytest.approx(sb.now())


async def test_async_clore_offers_the_same_server_time(sandbox_factory: SandboxFactory) -> None:
    """AsyncClore exposes the same estimate."""
    clock = FakeRealClock(T0)
    sb = _ahead(sandbox_factory, clock, 60, 1.0)
    async with AsyncClore(
        sb.demo_key, base_url=BASE_URL, transport=sb.async_transport(), clock=clock
    ) as aio:
        await aio.wallets()
        assert aio.time_scale == 1.0
        assert aio.server_time() == pytest.approx(clock.time() + 60)
