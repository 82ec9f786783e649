"""The CLI measures API times on the server's clock: a user's clock that `sandbox advance`
does not move, and a sandbox 60 times faster than the user's (fake clocks, no sleeping)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from cli_helpers import Cli

from _stub.scaled_clock import FakeRealClock, ScaledClock
from clore import Clore
from clore._clock import ManualClock
from clore.cli._format import duration
from clore.sandbox import BASE_URL, Sandbox

SCALE = 60.0


def _own_client(sb: Sandbox, clock: ManualClock) -> Clore:
    """A client on its own clock, as one of a sandbox server elsewhere would be."""
    return Clore(sb.demo_key, base_url=BASE_URL, transport=sb.transport(), clock=clock)


def test_order_shows_time_left_on_the_sandbox_clock_after_advance(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    """After `sandbox advance 2h`, `clore order` shows ct + mrl - the sandbox's now, though
    the user's own clock did not move."""
    # No rate limits: the sandbox's clock does not move with this client's pacing waits.
    sandbox = sandbox_factory(rate_limit=False)
    own = ManualClock()
    with _own_client(sandbox, own) as client:
        run = Cli(sandbox, own, client)
        server = next(s for s in client.marketplace() if not s.rented and s.mrl >= 24)
        order = client.create_order(server.id, "ubuntu")
        assert run("sandbox", "advance", "2h").exit_code == 0
        derived = run.json("order", str(order.id))["order"]["derived"]
        expected = order.ends_at - sandbox.now()
        assert derived["time_left_seconds"] == expected
        assert expected == pytest.approx(float(order.mrl) - 7200, abs=10)
        text = run("order", str(order.id)).stdout
        assert f"Time left     {duration(expected)}" in text


@pytest.fixture
def real() -> FakeRealClock:
    return FakeRealClock()


@pytest.fixture
def scaled_run(sandbox_factory: Callable[..., Sandbox], real: FakeRealClock) -> Iterator[Cli]:
    """The CLI on real time against a sandbox at time scale 60."""
    sb = sandbox_factory(clock=ScaledClock(real, SCALE), rate_limit=True)
    with _own_client(sb, real) as client:
        yield Cli(sb, real, client)


def _bid(run: Cli) -> tuple[int, float]:
    server = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    bid = round(server["price"]["spot"]["bitcoin"] * 2, 8)
    doc = run.json("spot", "bid", str(server["id"]), "--price", f"{bid:.8f}btc", "--yes")
    return doc["order"]["id"], bid


def test_a_refused_lowering_says_how_long_to_really_wait(scaled_run: Cli) -> None:
    """At scale 60 a refusal names the real wait (about 10 s) and the server's 600 s."""
    oid, bid = _bid(scaled_run)
    assert scaled_run("spot", "price", str(oid), f"{bid * 0.95:.8f}").exit_code == 0
    result = scaled_run("spot", "price", str(oid), f"{bid * 0.9:.8f}")
    assert result.exit_code == 1
    # Each paced request takes a real second (60 sandbox seconds) of the 600.
    found = re.search(r"allowed in (\d+) s \((\d+) s of the server's time\)", result.stderr)
    assert found is not None, result.stderr
    real_wait, server_wait = int(found.group(1)), int(found.group(2))
    assert 400 < server_wait < 600 and real_wait == pytest.approx(server_wait / SCALE, abs=1)


def test_walk_waits_real_seconds_between_steps(scaled_run: Cli, real: FakeRealClock) -> None:
    """--walk sleeps the client-seconds wait (about 11 s), never the server's 600 s."""
    oid, bid = _bid(scaled_run)
    target = round(bid * 0.85, 8)  # two steps of at most 10 %
    result = scaled_run("spot", "price", str(oid), f"{target:.8f}", "--walk")
    assert result.exit_code == 0, result.output
    assert float(scaled_run.client.get_order(oid).price) == pytest.approx(target)
    assert max(real.slept) == pytest.approx(11, abs=1)
    assert sum(real.slept) < 30


def test_spend_and_orders_count_time_left_on_the_sandbox_clock(
    scaled_run: Cli, real: FakeRealClock
) -> None:
    """Five real minutes are five sandbox hours: `orders` shows that much less time left."""
    server = scaled_run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    order = scaled_run.client.create_order(server["id"], "ubuntu")
    real.advance(300)
    doc = scaled_run.json("orders")
    left = doc["orders"][0]["derived"]["time_left_seconds"]
    assert left == pytest.approx(order.ends_at - scaled_run.sandbox.now(), abs=SCALE * 2)
    assert left < float(order.mrl) - 4.9 * 3600
