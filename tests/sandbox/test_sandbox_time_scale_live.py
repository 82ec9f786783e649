"""End to end over TCP: the SDK and the CLI on real time against
``python -m clore.sandbox serve --time-scale 600`` (a sandbox minute every real 0.1 s)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from clore import Clore, Pacing, SpotPriceLoweringTooSoonError

pytestmark = pytest.mark.slow

SCALE = 600.0
CLORE = str(Path(sys.executable).with_name("clore"))


@dataclass(frozen=True)
class Live:
    base: str
    key: str
    env: dict[str, str]

    def now(self) -> float:
        """The sandbox's time, from its control plane."""
        info = httpx.get(self.base.removesuffix("/v1") + "/_sandbox/info", timeout=5).json()
        return float(info["now"])

    def client(self) -> Clore:
        # Requests 10 real ms apart are 6 sandbox seconds apart: within the sandbox's rate
        # limits, and the test stays short. The 600 s spot rule is kept.
        pacing = Pacing(min_interval=0.01, create_interval=0.01, shared=False)
        return Clore(self.key, base_url=self.base, pacing=pacing)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One sandbox server at time scale 600 for the module."""
    home = tmp_path_factory.mktemp("live-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    env.update(
        CLORE_CONFIG_DIR=str(home / "config"),
        CLORE_CACHE_DIR=str(home / "cache"),
        CLORE_DATA_DIR=str(home / "data"),
        HOME=str(home),
    )
    args = [sys.executable, "-m", "clore.sandbox", "serve", "--port", "0"]
    args += ["--time-scale", str(SCALE), "--db", ":memory:"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+/v1", proc.stdout.readline())
        key = proc.stdout.readline().split(": ", 1)[-1].strip()
        assert url is not None, "unexpected banner"
        server = Live(url.group(0), key, env)
        for _ in range(200):
            try:
                server.now()
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _spot_order(client: Clore) -> tuple[int, float]:
    """A spot bid at twice the minimum of a free server; (order id, bid)."""
    for server in client.marketplace():
        minimum = server.price_per_day("bitcoin", spot=True)
        if not server.rented and server.accepts("bitcoin") and minimum and 1e-5 < minimum < 1e-3:
            bid = round(minimum * 2, 8)
            order = client.create_order(server.id, "ubuntu", order_type="spot", spotprice=bid)
            return order.id, bid
    raise AssertionError("no spot server in the snapshot")


def test_spot_lowering_follows_the_sandbox_clock(live: Live) -> None:
    """Lower, wait 1.2 real s (720 sandbox s), lower again: sent and accepted, no local
    refusal; a third lowering at once is refused locally with a real wait of about 1 s."""
    with live.client() as client:
        oid, bid = _spot_order(client)
        first, second, third = (round(bid * f, 8) for f in (0.95, 0.95**2, 0.95**3))
        client.set_spot_price(oid, first)
        time.sleep(1.2)
        client.set_spot_price(oid, second)
        assert float(client.get_order(oid).price) == second
        with pytest.raises(SpotPriceLoweringTooSoonError) as info:
            client.set_spot_price(oid, third)
        assert client.time_scale == SCALE
    assert info.value.local
    assert 400 < (info.value.time_to_lowering or 0) <= 600
    assert 0 < (info.value.wait_seconds or 0) <= 1.0


def test_the_servers_own_refusal_is_converted_to_a_real_wait(live: Live) -> None:
    """A client that did not make the lowering is refused by the server: its wait is the
    reported time_to_lowering / 600."""
    with live.client() as client, live.client() as other:
        oid, bid = _spot_order(client)
        client.set_spot_price(oid, round(bid * 0.95, 8))
        with pytest.raises(SpotPriceLoweringTooSoonError) as info:
            other.set_spot_price(oid, round(bid * 0.9, 8))
    left = info.value.time_to_lowering
    assert not info.value.local and left is not None
    assert info.value.wait_seconds == pytest.approx(left / SCALE)


def test_time_left_agrees_with_the_servers_clock(live: Live) -> None:
    """get_order(...).time_left(server_time()) is ct + mrl - the sandbox's now."""
    with live.client() as client:
        oid, _ = _spot_order(client)
        time.sleep(0.5)  # 300 sandbox seconds (at least: more under load)
        before = live.now()
        order = client.get_order(oid)
        left = order.time_left(client.server_time()).total_seconds()
        after = live.now()
    # The estimate is at least the time stamped on get_order's answer (after `before`) and
    # at most the server's time when it is read (before `after`): no allowance for load.
    assert order.ends_at - after - 1e-3 <= left <= order.ends_at - before + 1e-3
    assert left < float(order.mrl) - 250


def _clore(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**live.env, "CLORE_API_KEY": live.key}
    return subprocess.run(
        [CLORE, "--base-url", live.base, *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_clore_order_shows_time_left_on_the_sandbox_clock(live: Live) -> None:
    """After `clore sandbox advance 2h`, `clore order` counts time left on the server's
    clock (2 sandbox hours and the scaled time since are gone), not the local clock."""
    with live.client() as client:
        oid, _ = _spot_order(client)
    assert _clore(live, "sandbox", "advance", "2h").returncode == 0
    before = live.now()
    done = _clore(live, "--json", "order", str(oid))
    after = live.now()
    assert done.returncode == 0, done.stderr
    derived = json.loads(done.stdout)["order"]["derived"]
    left, ends = derived["time_left_seconds"], derived["expires_at"]
    assert ends - after - 30 <= left <= ends - before + 30
