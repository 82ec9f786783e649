"""create_order rents exactly once and returns the new order, whatever the network does."""

from __future__ import annotations

import itertools

import pytest

import clore
from _stub.wire import Wire, end, free_server, mine, rent, rented_server, spot_price
from clore import AsyncClore, Clore
from clore._clock import ManualClock
from clore._pacing import CLAIM_POLL, CLAIM_WAIT, NO_CLAIM, Busy, Claim
from clore.fleet import LeaseLostError, ServerClaimedError
from clore.sandbox import BASE_URL, Sandbox

#: Sandbox seconds after which a timed late_commit lands: past every check of the call.
AFTER_THE_CALL = 120.0


def ids(sandbox: Sandbox) -> list[int]:
    """The demo user's order ids, ended ones too."""
    return [o.id for o in mine(sandbox)]


def test_order_is_found_in_my_orders_and_returned(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """The API answers only code 0; the SDK returns the new Order with its id."""
    sid = free_server(sandbox)
    old = rent(sandbox, sid)
    end(sandbox, old)
    order = client.create_order(sid, "cloreai/ubuntu22.04-cuda12")
    assert order.id != old and order.si == sid
    assert ids(sandbox) == [old, order.id]
    assert [s.endpoint for s in wire.seen] == ["my_orders", "create_order", "my_orders"]


def test_newest_of_several_new_orders_on_the_server_is_returned(
    sandbox: Sandbox, wire: Wire, client: Clore, clock: ManualClock
) -> None:
    """When two unknown orders on the server appear, the newest `ct` is ours."""
    sid = free_server(sandbox, spot=True)

    def another_session_bids() -> None:  # between the snapshot and our send
        rent(sandbox, sid, spot=True)
        clock.advance(2)

    wire.before("create_order", another_session_bids)
    order = client.create_order(sid, "img")
    assert order.id == max(ids(sandbox)) and len(ids(sandbox)) == 2
    assert not order.spot


@pytest.mark.parametrize(
    "fault", ["drop_after_commit", "timeout_after_commit", "http_500_after_commit"]
)
def test_answer_lost_after_commit_gives_exactly_one_order(
    fault: str, sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """The server rented but the answer was lost: one order exists and it is returned."""
    sandbox.inject_fault("create_order", fault)
    order = client.create_order(free_server(sandbox), "img")
    assert ids(sandbox) == [order.id]
    assert len(wire.sent("create_order")) == 1


def test_garbled_answer_after_commit_returns_the_order(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """A 200 whose body is not JSON, sent after the server rented, still yields the order."""
    sandbox.inject_fault("create_order", "garbled_after_commit")
    order = client.create_order(free_server(sandbox), "img")
    assert ids(sandbox) == [order.id]
    assert len(wire.sent("create_order")) == 1


def test_garbled_answer_without_an_order_is_may_exist_not_resent(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """A garbled answer with no order behind it is 'may exist' after the check; not resent."""
    sandbox.inject_fault("create_order", "garbled")
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
        client.create_order(free_server(sandbox), "img")
    assert isinstance(info.value.__cause__, clore.UnexpectedResponseError)
    assert ids(sandbox) == [] and len(wire.sent("create_order")) == 1


@pytest.mark.parametrize("fault", ["drop_after_commit", "timeout_after_commit"])
def test_spot_answer_lost_after_commit_gives_exactly_one_offer(
    fault: str, sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """A spot bid whose answer was lost is not placed twice (spot allows several offers)."""
    sid = free_server(sandbox, spot=True)
    sandbox.inject_fault("create_order", fault)
    order = client.create_order(sid, "img", order_type="spot", spotprice=spot_price(sandbox, sid))
    assert order.spot and ids(sandbox) == [order.id]
    assert len(wire.sent("create_order")) == 1


@pytest.mark.parametrize("fault", ["http_500", "db_error", "timeout"])
def test_failure_before_commit_is_reconciled_then_retried_once(
    fault: str, sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """An uncertain failure with no order behind it is checked, then the send retried."""
    sandbox.inject_fault("create_order", fault)
    order = client.create_order(free_server(sandbox), "img")
    assert ids(sandbox) == [order.id]
    assert len(wire.sent("create_order")) == 2
    assert [s.endpoint for s in wire.seen][:2] == ["my_orders", "create_order"]
    assert [s.endpoint for s in wire.seen][2:5] == ["my_orders"] * 3  # the checks


@pytest.mark.parametrize("fault", ["connect", "connect_timeout", "rate_limit", "rate_limit_200"])
def test_unsent_or_refused_request_is_retried_without_reconciling(
    fault: str, sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """A request never sent or refused by the rate limit is simply sent again."""
    never_left = fault.startswith("connect")
    if never_left:
        wire.network.unreachable("create_order", fault)
    else:
        sandbox.inject_fault("create_order", fault)
    order = client.create_order(free_server(sandbox), "img")
    assert ids(sandbox) == [order.id]
    creates = ["create_order"] if never_left else ["create_order", "create_order"]
    assert [s.endpoint for s in wire.seen] == ["my_orders", *creates, "my_orders"]
    assert wire.network.refused == (1 if never_left else 0)


def test_retry_answered_already_rented_finds_the_first_attempts_order(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """The first send lands only as the resend arrives, after the checks missed it: the
    resend hits server-already-rented, and the first order is found and returned."""
    sandbox.inject_fault("create_order", "late_commit")
    order = client.create_order(free_server(sandbox), "img")
    assert ids(sandbox) == [order.id]
    resend = wire.sent("create_order")[1]
    assert len(wire.sent("create_order")) == 2 and resend.code == 6


def test_spot_bid_committed_late_is_found_before_any_resend(
    sandbox: Sandbox, wire: Wire, client: Clore, clock: ManualClock
) -> None:
    """A spot bid whose lost send lands while the SDK still checks is found, not placed twice."""
    sid = free_server(sandbox, spot=True)
    sandbox.inject_fault("create_order", "late_commit", seconds=6)
    order = client.create_order(sid, "img", order_type="spot", spotprice=spot_price(sandbox, sid))
    assert ids(sandbox) == [order.id]
    assert len(wire.sent("create_order")) == 1
    assert len(wire.sent("my_orders")) > 1 + 3  # it took the extra spot checks to see it
    assert 2.0 in clock.slept  # the extra spot checks are spaced out, not back to back


def test_server_rented_by_someone_else_raises(sandbox: Sandbox, wire: Wire, client: Clore) -> None:
    """A first attempt answered server-already-rented raises it; nothing is retried."""
    with pytest.raises(clore.ServerAlreadyRentedError):
        client.create_order(rented_server(sandbox), "img")
    assert len(wire.sent("create_order")) == 1


def test_code0_without_an_order_raises_unconfirmed_and_never_resends(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """If the API says code 0 but no order appears, OrderUnconfirmedError; one send only."""
    sandbox.inject_fault("create_order", "phantom_success")
    with pytest.raises(clore.OrderUnconfirmedError, match="answered code 0"):
        client.create_order(free_server(sandbox), "img")
    assert len(wire.sent("create_order")) == 1
    assert len(wire.sent("my_orders")) == 1 + 3


def test_unreachable_my_orders_after_an_uncertain_send_is_unconfirmed(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """When the order cannot be checked after a lost answer, the SDK says so, not 'failed'."""
    sandbox.inject_fault("create_order", "drop_after_commit")
    # The snapshot before the send succeeds; every check after it meets a 500.
    wire.before("create_order", lambda: sandbox.inject_fault("my_orders", "http_500", count=4))
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
        client.create_order(free_server(sandbox), "img")
    assert isinstance(info.value.__cause__, clore.UnexpectedResponseError)
    assert len(ids(sandbox)) == 1 and len(wire.sent("create_order")) == 1


def test_uncertain_failures_stop_after_max_retries(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """A send that keeps failing uncertainly is tried max_retries+1 times, then is 'may exist'
    (any of them may still commit), its message one line naming the runs of outcomes."""
    sandbox.inject_fault("create_order", "http_500", count=4)
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
        client.create_order(free_server(sandbox), "img")
    assert isinstance(info.value.__cause__, clore.UnexpectedResponseError)
    assert "attempts 1-4 server error (create_order: HTTP 500" in str(info.value)
    assert len(wire.sent("create_order")) == 4
    assert ids(sandbox) == []


def test_application_errors_are_raised_without_reconciling(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """A definite refusal such as not_enough_balance is raised after one send."""
    broke, _ = sandbox.create_user("broke", {})
    client = Clore(broke, base_url=BASE_URL, transport=wire.transport(), clock=clock)
    with pytest.raises(clore.NotEnoughBalanceError):
        client.create_order(free_server(sandbox), "img")
    assert [s.endpoint for s in wire.seen] == ["my_orders", "create_order"]


def test_snapshot_failure_sends_nothing(sandbox: Sandbox, wire: Wire, clock: ManualClock) -> None:
    """If the my_orders snapshot cannot be taken, create_order is never sent."""
    client = Clore("f" * 32, base_url=BASE_URL, transport=wire.transport(), clock=clock)
    with pytest.raises(clore.AuthenticationError):
        client.create_order(free_server(sandbox), "img")
    assert wire.sent("create_order") == [] and [s.status for s in wire.seen] == [401]


def test_reconciliation_never_trips_the_rate_limit(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """Snapshot, send, retries and polls are all paced: the server rejects nothing."""
    sandbox.inject_fault("create_order", "http_500")
    sandbox.inject_fault("create_order", "drop_after_commit")
    client.create_order(free_server(sandbox), "img")
    assert wire.rejected == 0 and len(wire.seen) > 6


async def test_async_create_order_is_exactly_once_too(
    sandbox: Sandbox, aclient: AsyncClore
) -> None:
    """The async client runs the same reconciliation: one order, returned."""
    sandbox.inject_fault("create_order", "drop_after_commit")
    order = await aclient.create_order(free_server(sandbox), "img")
    assert ids(sandbox) == [order.id]


# --------------------------------------------------------------------------- wait_for_order


def test_wait_for_order_returns_once_provisioned(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """Polling stops when the order has pub_cluster and tcp_ports; the ready Order returns."""
    order = client.create_order(free_server(sandbox), "img")
    assert not order.ready
    ready = client.wait_for_order(order.id, timeout=120, poll_interval=5)
    assert ready.ssh_endpoint is not None and ready.id == order.id
    polls = [s.at for s in wire.sent("my_orders")][2:]
    assert len(polls) >= 2 and all(b - a >= 5 for a, b in itertools.pairwise(polls))
    assert wire.rejected == 0


def test_wait_for_order_raises_when_the_order_expires(sandbox: Sandbox, client: Clore) -> None:
    """An order that ends while waiting raises OrderExpiredError."""
    order = rent(sandbox)
    end(sandbox, order)
    with pytest.raises(clore.OrderExpiredError) as info:
        client.wait_for_order(order)
    assert info.value.order_id == order


def test_wait_for_order_raises_when_the_order_vanishes(client: Clore) -> None:
    """An order missing from my_orders raises OrderNotFoundError."""
    with pytest.raises(clore.OrderNotFoundError):
        client.wait_for_order(31337)


def test_wait_for_order_times_out(sandbox: Sandbox, client: Clore, clock: ManualClock) -> None:
    """An order not ready within the timeout raises WaitTimeoutError on time."""
    sid = free_server(sandbox, spot=True)
    rival, _ = sandbox.create_user("rival", {"bitcoin": 1.0})
    rent(sandbox, sid, spot=True, spotprice=spot_price(sandbox, sid) * 2, api_key=rival)
    order = rent(sandbox, sid, spot=True)  # outbid: it never starts
    start = clock.time()
    with pytest.raises(clore.WaitTimeoutError):
        client.wait_for_order(order, timeout=30, poll_interval=4)
    assert 30 <= clock.time() - start <= 32


async def test_async_wait_for_order(sandbox: Sandbox, aclient: AsyncClore) -> None:
    """The async wait returns the ready order the same way."""
    order = rent(sandbox)
    ready = await aclient.wait_for_order(order, timeout=60)
    assert ready.ready


# --------------------------------------------------------------------------- late commits
# The first send reaches the server after the client gave up on it (the late_commit fault):
# once an attempt's outcome was uncertain, no later refusal may turn the call into a plain
# failure.


def test_late_commit_then_rate_limited_resend_returns_the_order(
    sandbox: Sandbox, client: Clore
) -> None:
    """First send commits late, the resend is refused by 429s: the committed order is returned."""
    sandbox.inject_fault("create_order", "late_commit")
    sandbox.inject_fault("create_order", "rate_limit", count=4)
    sid = free_server(sandbox)
    order = client.create_order(sid, "img")
    assert [(o.id, o.server_id) for o in mine(sandbox)] == [(order.id, sid)]
    assert sandbox.faults() == []  # the resend met every 429: the refusal was real


@pytest.mark.parametrize("refusal", ["rate_limit", "server-offline"])
def test_late_commit_after_a_refused_resend_raises_may_exist(
    sandbox: Sandbox, client: Clore, refusal: str
) -> None:
    """The first send commits only after the resend was refused: OrderUnconfirmedError, not
    the refusal, and it names both what the first attempt and what the resend saw."""
    sid = free_server(sandbox)
    sandbox.inject_fault("create_order", "late_commit", seconds=AFTER_THE_CALL)
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
    assert mine(sandbox) == []
    sandbox.set_server(sid, online=True)
    sandbox.advance(AFTER_THE_CALL)  # the first request arrives: the order the error warned of
    assert [o.server_id for o in mine(sandbox)] == [sid]


def test_already_rented_resend_without_our_order_raises_may_exist(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """The first attempt's outcome is unknown, the resend is answered server-already-rented
    and no order of ours shows in my_orders: 'may exist' (the first attempt may still land),
    not the refusal, and nothing is sent a third time."""
    sid = free_server(sandbox)
    rival, _ = sandbox.create_user("rival", {"bitcoin": 1.0})
    sandbox.inject_fault("create_order", "timeout")
    wire.before("create_order", lambda: rent(sandbox, sid, api_key=rival), nth=2)
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
        client.create_order(sid, "img")
    assert isinstance(info.value.__cause__, clore.ServerAlreadyRentedError)
    assert ids(sandbox) == [] and len(wire.sent("create_order")) == 2


def test_spot_bid_with_an_unknown_outcome_is_never_sent_twice(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """A spot bid that commits after every my_orders check is not resent (a resend would be
    a second offer): OrderUnconfirmedError, and one offer once the first arrives."""
    sid = free_server(sandbox, spot=True)
    sandbox.inject_fault("create_order", "late_commit", seconds=AFTER_THE_CALL)
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist"):
        client.create_order(sid, "img", order_type="spot", spotprice=spot_price(sandbox, sid))
    assert len(wire.sent("create_order")) == 1 and mine(sandbox) == []
    sandbox.advance(AFTER_THE_CALL)
    assert [(o.server_id, o.spot) for o in mine(sandbox)] == [(sid, True)]


async def test_async_late_commit_after_a_refused_resend_raises_may_exist(
    sandbox: Sandbox, aclient: AsyncClore
) -> None:
    """AsyncClore runs the same rule: a refusal after an unknown outcome is 'may exist'."""
    sid = free_server(sandbox)
    sandbox.inject_fault("create_order", "late_commit", seconds=AFTER_THE_CALL)
    sandbox.inject_fault("create_order", "rate_limit", count=4)
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist"):
        await aclient.create_order(sid, "img")
    sandbox.advance(AFTER_THE_CALL)
    assert [o.server_id for o in mine(sandbox)] == [sid]


# --------------------------------------------------------------------------- the claim


class Claims:
    """Claims as a fleet's store hands them out (``Pacer.claim``), noting what the flow does
    with them: when each is taken, checked and released, by how many requests the wire saw."""

    def __init__(self, wire: Wire, busy: int = 0) -> None:
        self.wire = wire
        self.busy = busy  # answers "held by another" this many times first (-1: forever)
        self.lost = False
        self.log: list[tuple[str, int]] = []

    def claim(self, name: str) -> Claim | Busy:
        if self.busy:
            self.busy -= 1
            return Busy(left=5.0, holder="host-b/7/0f0f0f0f")
        self.log.append((f"claim {name}", len(self.wire.seen)))
        return _Claim(self)

    def lose(self) -> None:
        self.lost = True


class _Claim:
    def __init__(self, claims: Claims) -> None:
        self.claims = claims

    def check(self) -> None:
        self.claims.log.append(("check", len(self.claims.wire.seen)))
        if self.claims.lost:
            raise LeaseLostError("the claim on server 1 at redis://h:6379/0 lapsed")

    def release(self) -> None:
        self.claims.log.append(("release", len(self.claims.wire.seen)))

    def __enter__(self) -> _Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.fixture
def claims(wire: Wire, client: Clore, monkeypatch: pytest.MonkeyPatch) -> Claims:
    """The client's pacer handing out ``Claims``' claims, as a fleet's would."""
    made = Claims(wire)
    monkeypatch.setattr(client._ctx.pacer, "claim", made.claim)
    return made


def test_local_pacing_holds_no_claim(client: Clore) -> None:
    """One machine's pacer (memory, file) has no claims to give: create_order is as before."""
    assert client._ctx.pacer.claim("server-1") is NO_CLAIM


def test_the_claim_is_held_from_before_the_snapshot_to_after_the_last_check(
    sandbox: Sandbox, wire: Wire, client: Clore, claims: Claims
) -> None:
    """Claimed before the snapshot, checked before the send and once the order is found,
    released at the end."""
    sid = free_server(sandbox)
    sandbox.inject_fault("create_order", "drop_after_commit")
    order = client.create_order(sid, "img")
    assert ids(sandbox) == [order.id]
    assert [s.endpoint for s in wire.seen] == ["my_orders", "create_order", "my_orders"]
    assert claims.log == [(f"claim server-{sid}", 0), ("check", 1), ("check", 3), ("release", 3)]


def test_a_claim_lost_before_the_send_sends_nothing(
    sandbox: Sandbox, wire: Wire, client: Clore, claims: Claims
) -> None:
    """A claim that lapsed while the snapshot was taken: LeaseLostError, nothing sent."""
    claims.lost = True
    sid = free_server(sandbox)
    with pytest.raises(LeaseLostError, match=f"server {sid}: .* lapsed; nothing was sent"):
        client.create_order(sid, "img")
    assert wire.sent("create_order") == [] and ids(sandbox) == []
    assert claims.log[-1][0] == "release"


def test_an_order_found_after_the_claim_was_lost_is_not_claimed_as_ours(
    sandbox: Sandbox, wire: Wire, client: Clore, claims: Claims
) -> None:
    """The claim lapses while the answer is lost: the new order on the server may be
    another machine's, so it is 'may exist' naming the order, not returned."""
    sid = free_server(sandbox)
    sandbox.inject_fault("create_order", "drop_after_commit")
    wire.before("create_order", claims.lose)
    with pytest.raises(clore.OrderUnconfirmedError, match="may exist") as info:
        client.create_order(sid, "img")
    (order,) = ids(sandbox)
    assert f"order {order} appeared on it, but the claim on server 1" in str(info.value)
    assert isinstance(info.value.__cause__, LeaseLostError)
    assert len(wire.sent("create_order")) == 1


def test_a_claim_lost_before_a_resend_stops_the_resend(
    sandbox: Sandbox, wire: Wire, client: Clore, claims: Claims
) -> None:
    """No order after an answer lost, but the claim lapsed meanwhile: not resent
    (another machine may be renting the server), 'may exist'."""
    sandbox.inject_fault("create_order", "timeout")
    wire.before("create_order", claims.lose)
    with pytest.raises(clore.OrderUnconfirmedError, match=r"attempt 1 timed out .*lapsed"):
        client.create_order(free_server(sandbox), "img")
    assert len(wire.sent("create_order")) == 1 and ids(sandbox) == []


def test_create_order_waits_while_another_holds_the_claim(
    sandbox: Sandbox, wire: Wire, client: Clore, claims: Claims, clock: ManualClock
) -> None:
    """While the server is claimed elsewhere nothing is sent; once free the call goes on."""
    claims.busy = 3
    started = clock.monotonic()
    order = client.create_order(free_server(sandbox), "img")
    assert clock.monotonic() - started >= 3 * CLAIM_POLL
    assert claims.log[0] == (f"claim server-{order.si}", 0)
    assert ids(sandbox) == [order.id]


def test_a_claim_held_elsewhere_past_the_wait_is_refused_unsent(
    sandbox: Sandbox, wire: Wire, client: Clore, claims: Claims, clock: ManualClock
) -> None:
    """Claimed elsewhere for CLAIM_WAIT s: ServerClaimedError naming the holder; no request."""
    claims.busy = -1
    sid = free_server(sandbox)
    started = clock.monotonic()
    with pytest.raises(ServerClaimedError, match=f"server {sid}: .*host-b/7/0f0f0f0f") as info:
        client.create_order(sid, "img")
    assert "nothing was sent" in str(info.value)
    assert info.value.server_id == sid and info.value.waited >= CLAIM_WAIT
    assert clock.monotonic() - started >= CLAIM_WAIT
    assert wire.seen == []
