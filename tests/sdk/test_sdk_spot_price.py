"""set_spot_price keeps the server's 600 s lowering window: what a local refusal carries,
where the window starts, and what a refusal from the server teaches (found by mutation
testing of ``clore._flows``), on the in-process sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import clore
from _stub.sandbox_hooks import (
    IMAGE,
    Hooks,
    demo_user,
    free_servers,
    hooked_client,
    lowest_spot_bid,
)
from clore import Clore
from clore._clock import ManualClock
from clore._wire import SetSpotPriceRequest
from clore.sandbox import BASE_URL, Sandbox
from clore.sandbox.transport import SandboxTransport

WINDOW = 600.0


@pytest.fixture
def hooks(sandbox: Sandbox) -> Hooks:
    return Hooks(sandbox)


@pytest.fixture
def client(sandbox: Sandbox, hooks: Hooks) -> Iterator[Clore]:
    with hooked_client(sandbox, hooks) as c:
        yield c


def place_bid(sandbox: Sandbox, client: Clore) -> tuple[int, float]:
    """A spot order of the demo user bidding twice the lowest bid: (order id, bid)."""
    server = free_servers(sandbox, spot=True)[0]
    bid = 2 * lowest_spot_bid(sandbox, server)
    return client.create_order(server, IMAGE, order_type="spot", spotprice=bid).id, bid


def test_a_local_refusal_carries_what_the_servers_would(
    sandbox: Sandbox, hooks: Hooks, client: Clore
) -> None:
    """A second lowering inside the window fails unsent, with code 6, the API's error string,
    its body, the seconds left on the server and the same on the client's clock."""
    order_id, bid = place_bid(sandbox, client)
    client.set_spot_price(order_id, bid * 0.95)
    sandbox.advance(100.0)
    sent = len(hooks.sent("set_spot_price"))
    with pytest.raises(clore.SpotPriceLoweringTooSoonError) as info:
        client.set_spot_price(order_id, bid * 0.9)
    exc = info.value
    left = exc.time_to_lowering
    assert left is not None and left == pytest.approx(WINDOW - 100.0, abs=0.5)
    body = {"code": 6, "error": "can_lower_every_600_seconds", "time_to_lowering": left}
    assert (exc.code, exc.error, exc.body, exc.endpoint, exc.local, exc.wait_seconds) == (
        6,
        "can_lower_every_600_seconds",
        body,
        "set_spot_price",
        True,
        left,
    )
    assert len(hooks.sent("set_spot_price")) == sent


def test_half_a_second_left_in_the_window_still_refuses_locally(
    sandbox: Sandbox, hooks: Hooks, client: Clore
) -> None:
    """Less than a second before the window ends, a lowering is still refused unsent."""
    order_id, bid = place_bid(sandbox, client)
    client.set_spot_price(order_id, bid * 0.95)
    (lowered_at,) = hooks.sent("set_spot_price")
    sandbox.advance(lowered_at + WINDOW - 0.5 - sandbox.now())
    with pytest.raises(clore.SpotPriceLoweringTooSoonError) as info:
        client.set_spot_price(order_id, bid * 0.9)
    assert (info.value.local, len(hooks.sent("set_spot_price"))) == (True, 1)


def test_the_local_window_counts_from_the_send(
    sandbox: Sandbox, hooks: Hooks, client: Clore
) -> None:
    """The server may act on a lowering any time between its send and its answer, so the
    local check counts from the send: when the request waited 30 s before the server acted,
    a lowering 601 s after the send is left to the server to refuse (29 s left there)."""
    order_id, bid = place_bid(sandbox, client)
    hooks.before("set_spot_price", 1, lambda: sandbox.advance(30.0))  # a slow way there
    client.set_spot_price(order_id, bid * 0.95)
    (acted_at,) = hooks.sent("set_spot_price")  # 30 s after it was sent
    sandbox.advance(acted_at - 30.0 + WINDOW + 1.0 - sandbox.now())
    with pytest.raises(clore.SpotPriceLoweringTooSoonError) as info:
        client.set_spot_price(order_id, bid * 0.9)
    assert (info.value.local, info.value.time_to_lowering, len(hooks.sent("set_spot_price"))) == (
        False,
        29,
        2,
    )


@pytest.mark.parametrize("earlier", [0.0, 100.0])
def test_a_refusal_from_the_server_teaches_the_window(
    sandbox: Sandbox, hooks: Hooks, client: Clore, earlier: float
) -> None:
    """Lowered by another session (just before ours arrives, or 100 s before), the server
    refuses with the seconds left; they are the refusal's wait, and a retry 100 s later is
    refused locally with 100 s fewer."""
    order_id, bid = place_bid(sandbox, client)
    request = SetSpotPriceRequest(order_id=order_id, desired_price=bid * 0.95)
    other_session = lambda: sandbox.backend.set_spot_price(demo_user(sandbox), request)  # noqa: E731
    if earlier:
        other_session()
        sandbox.advance(earlier)
    else:
        hooks.before("set_spot_price", 1, other_session)
    with pytest.raises(clore.SpotPriceLoweringTooSoonError) as info:
        client.set_spot_price(order_id, bid * 0.9)
    first = info.value
    sandbox.advance(100.0)
    with pytest.raises(clore.SpotPriceLoweringTooSoonError) as again:
        client.set_spot_price(order_id, bid * 0.9)
    second = again.value
    assert first.time_to_lowering is not None and second.time_to_lowering is not None
    assert (first.local, first.wait_seconds, second.local, len(hooks.sent("set_spot_price"))) == (
        False,
        first.time_to_lowering,
        True,
        1,
    )
    assert (first.time_to_lowering, second.time_to_lowering) == (
        pytest.approx(WINDOW - earlier, abs=2.0),
        pytest.approx(first.time_to_lowering - 100.0, abs=0.5),
    )


class FastClock(ManualClock):
    """A sandbox clock that declares 60 sandbox seconds per real second."""

    time_scale = 60.0


class RealClock(ManualClock):
    """A client clock that declares itself real time."""

    time_scale = 1.0


def test_against_a_faster_sandbox_waits_are_in_the_clients_seconds(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    """On a sandbox 60 times faster, the 600 server seconds of the window are 10 s of the
    client's clock, in a local refusal and in one learned from the server."""
    sandbox = sandbox_factory(db=":memory:", seed="snapshot", rate_limit=False, clock=FastClock())
    hooks = Hooks(sandbox)
    with Clore(
        sandbox.demo_key, base_url=BASE_URL, transport=SandboxTransport(hooks), clock=RealClock()
    ) as client:
        order_id, bid = place_bid(sandbox, client)
        client.set_spot_price(order_id, bid * 0.95)
        with pytest.raises(clore.SpotPriceLoweringTooSoonError) as local:
            client.set_spot_price(order_id, bid * 0.9)
    with (
        Clore(
            sandbox.demo_key,
            base_url=BASE_URL,
            transport=SandboxTransport(hooks),
            clock=RealClock(),
        ) as other_session,
        pytest.raises(clore.SpotPriceLoweringTooSoonError) as remote,
    ):
        other_session.set_spot_price(order_id, bid * 0.9)
    assert (local.value.local, remote.value.local) == (True, False)
    assert (local.value.wait_seconds, remote.value.wait_seconds) == (
        pytest.approx(WINDOW / 60, abs=0.1),
        pytest.approx(WINDOW / 60, abs=0.1),
    )
