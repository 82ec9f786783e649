"""create_order rents exactly once and returns the new order, whatever the network does."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import clore
from _stub.fake_api import FakeAPI
from _stub.late_commit import LateCommit
from clore import AsyncClore, Clore
from clore._clock import ManualClock
from clore.sandbox import BASE_URL as SANDBOX_URL
from clore.sandbox import Sandbox
from clore.sandbox.transport import AsyncSandboxTransport, SandboxTransport


def test_order_is_found_in_my_orders_and_returned(api: FakeAPI, client: Clore) -> None:
    """The API answers only code 0; the SDK returns the new Order with its id."""
    old = api.add_order(si=1, expired=True)
    order = client.create_order(1, "cloreai/ubuntu22.04-cuda12")
    assert order.id != old["id"] and order.si == 1
    assert [o["id"] for o in api.created()] == [order.id]
    assert [s.endpoint for s in api.seen] == ["my_orders", "create_order", "my_orders"]


def test_newest_of_several_new_orders_on_the_server_is_returned(
    api: FakeAPI, client: Clore, clock: ManualClock
) -> None:
    """When two unknown orders on the server appear, the newest `ct` is ours."""
    original = api._ep_create_order

    def create_two(seen: object, fault: object) -> object:
        api.add_order(si=1, ct=clock.time() - 50, spot=True)  # someone else's session
        return original(seen, None)  # type: ignore[arg-type]

    api._ep_create_order = create_two  # type: ignore[method-assign]
    order = client.create_order(1, "img")
    assert order.id == max(o["id"] for o in api.orders)


@pytest.mark.parametrize("fault", ["drop_after_commit", "timeout_after_commit", "500_after_commit"])
def test_answer_lost_after_commit_gives_exactly_one_order(
    fault: str, api: FakeAPI, client: Clore
) -> None:
    """The server rented but the answer was lost: one order exists and it is returned."""
    api.inject("create_order", fault)
    order = client.create_order(1, "img")
    assert [o["id"] for o in api.created()] == [order.id]
    assert len(api.sent("create_order")) == 1


def test_garbled_answer_after_commit_returns_the_order(api: FakeAPI, client: Clore) -> None:
    """A 200 whose body is not JSON, sent after the server rented, still yields the order."""
    api.inject("create_order", "garbled_after_commit")
    order = client.create_order(1, "img")
    assert [o["id"] for o in api.created()] == [order.id]
    assert len(api.sent("create_order")) == 1


def test_garbled_answer_without_an_order_is_may_exist_not_resent(
    api: FakeAPI, client: Clore
) -> None:
    """A garbled answer with no order behind it is 'may exist' after the check; not resent."""
    api.inject("create_order", "not_json")
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
        client.create_order(1, "img")
    assert isinstance(info.value.__cause__, clore.UnexpectedResponseError)
    assert api.created() == [] and len(api.sent("create_order")) == 1


@pytest.mark.parametrize("fault", ["drop_after_commit", "timeout_after_commit"])
def test_spot_answer_lost_after_commit_gives_exactly_one_offer(
    fault: str, api: FakeAPI, client: Clore
) -> None:
    """A spot bid whose answer was lost is not placed twice (spot allows several offers)."""
    api.inject("create_order", fault)
    order = client.create_order(1, "img", order_type="spot", spotprice=0.00002)
    assert order.spot and [o["id"] for o in api.created()] == [order.id]
    assert len(api.sent("create_order")) == 1


@pytest.mark.parametrize("fault", ["500", "code1", "read_timeout"])
def test_failure_before_commit_is_reconciled_then_retried_once(
    fault: str, api: FakeAPI, client: Clore
) -> None:
    """An uncertain failure with no order behind it is checked, then the send retried."""
    api.inject("create_order", fault)
    order = client.create_order(1, "img")
    assert [o["id"] for o in api.created()] == [order.id]
    assert len(api.sent("create_order")) == 2


@pytest.mark.parametrize("fault", ["connect", "connect_timeout", "429", "code5"])
def test_unsent_or_refused_request_is_retried_without_reconciling(
    fault: str, api: FakeAPI, client: Clore
) -> None:
    """A request never sent or refused by the rate limit is simply sent again."""
    api.inject("create_order", fault)
    order = client.create_order(1, "img")
    assert [o["id"] for o in api.created()] == [order.id]
    assert [s.endpoint for s in api.seen] == [
        "my_orders",
        "create_order",
        "create_order",
        "my_orders",
    ]


def test_retry_answered_already_rented_finds_the_first_attempts_order(
    api: FakeAPI, client: Clore
) -> None:
    """my_orders lagged behind, the retry hit server-already-rented: the first order is ours."""
    api.inject("create_order", "drop_after_commit")
    api.hide_new = 4  # the snapshot is taken before; the 3 reconcile polls miss the order
    order = client.create_order(1, "img")
    assert [o["id"] for o in api.created()] == [order.id]
    assert len(api.sent("create_order")) == 2


def test_spot_bid_committed_late_is_found_before_any_resend(
    api: FakeAPI, client: Clore, clock: ManualClock
) -> None:
    """A spot bid whose lost answer shows up in my_orders late is found, not placed twice."""
    api.inject("create_order", "drop_after_commit")
    api.hide_new = 6  # the snapshot plus five reconcile polls miss the new offer
    order = client.create_order(1, "img", order_type="spot", spotprice=0.00002)
    assert [o["id"] for o in api.created()] == [order.id]
    assert len(api.sent("create_order")) == 1
    assert 2.0 in clock.slept  # the extra spot checks are spaced out, not back to back


def test_server_rented_by_someone_else_raises(api: FakeAPI, client: Clore) -> None:
    """A first attempt answered server-already-rented raises it; nothing is retried."""
    api.add_order(si=1)
    with pytest.raises(clore.ServerAlreadyRentedError):
        client.create_order(1, "img")
    assert len(api.sent("create_order")) == 1


def test_code0_without_an_order_raises_unconfirmed_and_never_resends(
    api: FakeAPI, client: Clore
) -> None:
    """If the API says code 0 but no order appears, OrderUnconfirmedError; one send only."""
    api.inject("create_order", "phantom")
    with pytest.raises(clore.OrderUnconfirmedError, match="answered code 0"):
        client.create_order(1, "img")
    assert len(api.sent("create_order")) == 1
    assert len(api.sent("my_orders")) == 1 + 3


def test_unreachable_my_orders_after_an_uncertain_send_is_unconfirmed(
    api: FakeAPI, client: Clore
) -> None:
    """When the order cannot be checked after a lost answer, the SDK says so, not 'failed'."""
    api.inject("create_order", "drop_after_commit")
    api.inject("my_orders", "ok", *["500"] * 4)
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
        client.create_order(1, "img")
    assert isinstance(info.value.__cause__, clore.UnexpectedResponseError)
    assert len(api.created()) == 1 and len(api.sent("create_order")) == 1


def test_uncertain_failures_stop_after_max_retries(api: FakeAPI, client: Clore) -> None:
    """A send that keeps failing uncertainly is tried max_retries+1 times, then is 'may exist'
    (any of them may still commit), its message one line naming the runs of outcomes."""
    api.inject("create_order", *["500"] * 4)
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
        client.create_order(1, "img")
    assert isinstance(info.value.__cause__, clore.UnexpectedResponseError)
    assert "attempts 1-4 server error (create_order: HTTP 500" in str(info.value)
    assert len(api.sent("create_order")) == 4
    assert api.created() == []


def test_application_errors_are_raised_without_reconciling(api: FakeAPI, client: Clore) -> None:
    """A definite refusal such as not_enough_balance is raised after one send."""
    api.responses["create_order"] = {"code": 6, "error": "not_enough_balance"}
    with pytest.raises(clore.NotEnoughBalanceError):
        client.create_order(1, "img")
    assert [s.endpoint for s in api.seen] == ["my_orders", "create_order"]


def test_snapshot_failure_sends_nothing(api: FakeAPI, client: Clore) -> None:
    """If the my_orders snapshot cannot be taken, create_order is never sent."""
    api.inject("my_orders", "401")
    with pytest.raises(clore.AuthenticationError):
        client.create_order(1, "img")
    assert api.sent("create_order") == []


def test_reconciliation_never_trips_the_rate_limit(api: FakeAPI, client: Clore) -> None:
    """Snapshot, send, retries and polls are all paced: the server rejects nothing."""
    api.inject("create_order", "500", "drop_after_commit")
    client.create_order(1, "img")
    assert api.rejected == 0


async def test_async_create_order_is_exactly_once_too(api: FakeAPI, aclient: AsyncClore) -> None:
    """The async client runs the same reconciliation: one order, returned."""
    api.inject("create_order", "drop_after_commit")
    order = await aclient.create_order(1, "img")
    assert [o["id"] for o in api.created()] == [order.id]


# --------------------------------------------------------------------------- wait_for_order


def test_wait_for_order_returns_once_provisioned(
    api: FakeAPI, client: Clore, clock: ManualClock
) -> None:
    """Polling stops when the order has pub_cluster and tcp_ports; the ready Order returns."""
    order = client.create_order(1, "img")
    ready = client.wait_for_order(order.id, timeout=120, poll_interval=5)
    assert ready.ssh_endpoint is not None and ready.id == order.id
    polls = [s.at for s in api.sent("my_orders")][2:]
    assert all(b - a >= 5 for a, b in itertools.pairwise(polls))
    assert api.rejected == 0


def test_wait_for_order_raises_when_the_order_expires(api: FakeAPI, client: Clore) -> None:
    """An order that ends while waiting raises OrderExpiredError."""
    order = api.add_order()
    api.orders[-1]["expired"] = True
    with pytest.raises(clore.OrderExpiredError) as info:
        client.wait_for_order(order["id"])
    assert info.value.order_id == order["id"]


def test_wait_for_order_raises_when_the_order_vanishes(api: FakeAPI, client: Clore) -> None:
    """An order missing from my_orders raises OrderNotFoundError."""
    with pytest.raises(clore.OrderNotFoundError):
        client.wait_for_order(31337)


def test_wait_for_order_times_out(api: FakeAPI, client: Clore, clock: ManualClock) -> None:
    """An order not ready within the timeout raises WaitTimeoutError on time."""
    api.provision_delay = 10_000
    order = api.add_order()
    start = clock.time()
    with pytest.raises(clore.WaitTimeoutError):
        client.wait_for_order(order["id"], timeout=30, poll_interval=4)
    assert 30 <= clock.time() - start <= 32


async def test_async_wait_for_order(api: FakeAPI, aclient: AsyncClore) -> None:
    """The async wait returns the ready order the same way."""
    order = api.add_order()
    ready = await aclient.wait_for_order(order["id"], timeout=60)
    assert ready.ready


# --------------------------------------------------------------------------- late commits
# The first send reaches the server after the client gave up on it (``LateCommit``): once an
# attempt's outcome was uncertain, no later refusal may turn the call into a plain failure.


def _late_client(sandbox: Sandbox, late: LateCommit, **kwargs: Any) -> Clore:
    return Clore(
        sandbox.demo_key,
        base_url=SANDBOX_URL,
        transport=SandboxTransport(late),
        clock=sandbox.clock,
        **kwargs,
    )


def _free_server(client: Clore, *, spot: bool = False) -> int:
    table = (lambda s: s.price.spot) if spot else (lambda s: s.price.on_demand)
    return min(
        (
            s
            for s in client.marketplace()
            if not s.rented and s.accepts("bitcoin") and "bitcoin" in table(s)
        ),
        key=lambda s: (float(table(s)["bitcoin"]), s.id),
    ).id


def _mine(sandbox: Sandbox) -> list[clore.Order]:
    with sandbox.client() as client:
        return client.my_orders(include_completed=True)


def test_late_commit_then_rate_limited_resend_returns_the_order(sandbox: Sandbox) -> None:
    """First send commits late, the resend is refused by 429s: the committed order is returned."""
    late = LateCommit(
        sandbox.handle, then=lambda: sandbox.inject_fault("create_order", "rate_limit", count=4)
    )
    with _late_client(sandbox, late) as client:
        sid = _free_server(client)
        order = client.create_order(sid, "img")
    assert [(o.id, o.si) for o in _mine(sandbox)] == [(order.id, sid)]
    assert sandbox.faults() == []  # the resend met every 429: the refusal was real


@pytest.mark.parametrize("refusal", ["rate_limit", "server-offline"])
def test_late_commit_after_a_refused_resend_raises_may_exist(
    sandbox: Sandbox, refusal: str
) -> None:
    """The first send commits only after the resend was refused: OrderUnconfirmedError, not
    the refusal, and it names both what the first attempt and what the resend saw."""
    late = LateCommit(sandbox.handle, before_resend=False)
    with _late_client(sandbox, late) as client:
        sid = _free_server(client)
        if refusal == "rate_limit":
            sandbox.inject_fault("create_order", "rate_limit", count=4)
        else:
            sandbox.set_server(sid, online=False)
        with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
            client.create_order(sid, "img")
    message = str(info.value)
    assert "attempt 1" in message and "timed out" in message
    assert ("rate limit" if refusal == "rate_limit" else "server-offline") in message
    assert isinstance(info.value.__cause__, clore.RateLimitError | clore.ServerOfflineError)
    assert "\n" not in message and sandbox.demo_key not in message
    sandbox.set_server(sid, online=True)
    sandbox.advance(10)
    late.deliver()  # the first request arrives: the order the error warned about exists
    assert late.committed
    assert [o.si for o in _mine(sandbox)] == [sid]


def test_already_rented_resend_with_lagging_my_orders_raises_may_exist(
    api: FakeAPI, client: Clore
) -> None:
    """The lost first attempt rented the server, my_orders lags past every check: the
    resend's server-already-rented is not reported as someone else's rental."""
    api.inject("create_order", "drop_after_commit")
    api.hide_new = 20
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
        client.create_order(1, "img")
    assert isinstance(info.value.__cause__, clore.ServerAlreadyRentedError)
    assert len(api.created()) == 1 and len(api.sent("create_order")) == 2


def test_spot_bid_with_an_unknown_outcome_is_never_sent_twice(sandbox: Sandbox) -> None:
    """A spot bid that commits after every my_orders check is not resent (a resend would be
    a second offer): OrderUnconfirmedError, and one offer once the first arrives."""
    late = LateCommit(sandbox.handle)
    with _late_client(sandbox, late) as client:
        sid = _free_server(client, spot=True)
        with pytest.raises(clore.OrderUnconfirmedError, match="may exist"):
            client.create_order(sid, "img", order_type="spot", spotprice=0.001)
    assert late.sent == 1 and late.holding
    sandbox.advance(10)
    late.deliver()
    assert [(o.si, o.spot) for o in _mine(sandbox)] == [(sid, True)]


async def test_async_late_commit_after_a_refused_resend_raises_may_exist(
    sandbox: Sandbox,
) -> None:
    """AsyncClore runs the same rule: a refusal after an unknown outcome is 'may exist'."""
    late = LateCommit(sandbox.handle, before_resend=False)
    sandbox.inject_fault("create_order", "rate_limit", count=4)
    async with AsyncClore(
        sandbox.demo_key,
        base_url=SANDBOX_URL,
        transport=AsyncSandboxTransport(late),
        clock=sandbox.clock,
    ) as client:
        sid = _free_server(sandbox.client())
        with pytest.raises(clore.OrderUnconfirmedError, match="may exist"):
            await client.create_order(sid, "img")
    sandbox.advance(10)
    late.deliver()
    assert [o.si for o in _mine(sandbox)] == [sid]
