"""Server time: the sandbox's x-sandbox-now / x-sandbox-time-scale headers, and an SDK
client on real time against a time-scaled sandbox (fake clocks, nothing sleeps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from _stub.scaled_clock import FakeRealClock, ScaledClock
from clore import Clore, Pacing, SpotPriceLoweringTooSoonError
from clore._clock import ManualClock
from clore.sandbox import BASE_URL, Sandbox

T0 = 1_700_000_000.0
SCALE = 60.0


def test_every_answer_carries_the_sandbox_time_and_scale(
    small: Sandbox, api: httpx.Client, clock: ManualClock
) -> None:
    """Answers (success, 401, unknown path, control plane) say the sandbox's time; a
    sandbox on a ManualClock reports scale 0: it moves only when told."""
    clock.advance(12.25)
    answers = [
        api.get("/wallets"),
        api.get("/wallets", headers={"auth": "wrong"}),
        api.get("/nowhere"),
        api.post("http://sandbox.local/_sandbox/advance", json={"seconds": 100}),
    ]
    for answer in answers:
        assert float(answer.headers["x-sandbox-now"]) == pytest.approx(small.now(), abs=100)
        assert answer.headers["x-sandbox-time-scale"] == "0.0"
    assert float(answers[0].headers["x-sandbox-now"]) == small.now() - 100
    assert float(answers[-1].headers["x-sandbox-now"]) == small.now()


def test_the_http_app_sends_the_same_headers(
    small: Sandbox, asgi_client: Callable[[Sandbox], httpx.Client]
) -> None:
    """Served over ASGI, answers carry the same time headers."""
    answer = asgi_client(small).get("/v1/marketplace")
    assert float(answer.headers["x-sandbox-now"]) == small.now()
    assert answer.headers["x-sandbox-time-scale"] == "0.0"


def test_a_sandbox_on_real_time_reports_its_time_scale() -> None:
    """A sandbox built with time_scale=60 says 60 simulated seconds per real second."""
    with Sandbox(db=":memory:", seed=None, time_scale=60) as sb:
        answer = httpx.Client(transport=sb.transport()).get(f"{BASE_URL}/marketplace")
        assert answer.headers["x-sandbox-time-scale"] == "60.0"
        assert float(answer.headers["x-sandbox-now"]) == pytest.approx(sb.now(), abs=60)


# ---- a client on real time, a sandbox 60 times faster ------------------------------------


@pytest.fixture
def real() -> FakeRealClock:
    """The client's clock: real time, with instant sleeps."""
    return FakeRealClock(T0)


@pytest.fixture
def scaled(small_seed: Path, real: FakeRealClock) -> Iterator[Sandbox]:
    """The small market on a clock 60 times faster than the client's."""
    with Sandbox(db=":memory:", seed=str(small_seed), clock=ScaledClock(real, SCALE)) as sb:
        yield sb


def _client(sb: Sandbox, real: FakeRealClock) -> Clore:
    # As a client of `clore sandbox serve --time-scale 60` on another machine would be.
    return Clore(sb.demo_key, base_url=BASE_URL, transport=sb.transport(), clock=real)


def _spot_bid(client: Clore, price: float = 0.05) -> int:
    return client.create_order(1, "ubuntu", order_type="spot", spotprice=price).id


def test_a_second_lowering_after_ten_real_seconds_is_sent(
    scaled: Sandbox, real: FakeRealClock
) -> None:
    """Ten real seconds are 600 sandbox seconds: the next lowering is not refused locally."""
    with _client(scaled, real) as client:
        oid = _spot_bid(client)
        client.set_spot_price(oid, 0.048)
        real.advance(10.5)
        client.set_spot_price(oid, 0.046)
        assert float(client.get_order(oid).price) == 0.046
        assert client.time_scale == SCALE


def test_a_local_refusal_gives_server_seconds_and_the_real_wait(
    scaled: Sandbox, real: FakeRealClock
) -> None:
    """Lowering again at once: time_to_lowering ~600 server s, wait_seconds ~10 real s."""
    with _client(scaled, real) as client:
        oid = _spot_bid(client)
        client.set_spot_price(oid, 0.048)
        with pytest.raises(SpotPriceLoweringTooSoonError) as info:
            client.set_spot_price(oid, 0.046)
    assert info.value.local
    assert info.value.time_to_lowering == pytest.approx(600, abs=SCALE * 1.1)
    assert info.value.wait_seconds == pytest.approx(info.value.time_to_lowering / SCALE)


def test_the_servers_refusal_gets_the_real_wait_too(scaled: Sandbox, real: FakeRealClock) -> None:
    """A client that did not see the first lowering is refused by the sandbox; its
    wait_seconds is the reported time_to_lowering at the sandbox's scale."""
    with _client(scaled, real) as first, _client(scaled, real) as second:
        oid = _spot_bid(first)
        first.set_spot_price(oid, 0.048)
        with pytest.raises(SpotPriceLoweringTooSoonError) as info:
            second.set_spot_price(oid, 0.046)
        assert not info.value.local
        left = info.value.time_to_lowering
        assert left is not None and 0 < left <= 600
        assert info.value.wait_seconds == pytest.approx(left / SCALE)
        # Remembered in server time: allowed again once that many real seconds pass.
        real.advance(left / SCALE + 0.1)
        second.set_spot_price(oid, 0.046)


def test_time_left_counts_down_in_sandbox_time(scaled: Sandbox, real: FakeRealClock) -> None:
    """Five real minutes are five sandbox hours; an advance jumps on top of that."""
    with _client(scaled, real) as client:
        order = client.create_order(4, "ubuntu")
        real.advance(300)
        scaled.advance(3600)
        found = client.get_order(order.id)
        left = found.time_left(client.server_time()).total_seconds()
        assert left == pytest.approx(found.ends_at - scaled.now(), abs=1)
        assert left == pytest.approx(float(found.mrl) - 6 * 3600, abs=SCALE * 3)


def test_pacing_between_requests_stays_on_the_clients_clock(
    scaled: Sandbox, real: FakeRealClock
) -> None:
    """Request spacing is 1 real second (over-conservative against a faster sandbox)."""
    with Clore(
        scaled.demo_key,
        base_url=BASE_URL,
        transport=scaled.transport(),
        clock=real,
        pacing=Pacing(shared=False),
    ) as client:
        client.wallets()
        client.wallets()
    assert real.slept == [pytest.approx(1.01)]
