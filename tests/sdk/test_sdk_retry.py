"""Reads retry transient failures with capped, jittered backoff; writes never retry blindly."""

from __future__ import annotations

import random

import pytest

import clore
from _stub.wire import Wire, mine, rent
from clore import Clore
from clore._clock import ManualClock
from clore._retry import MAX_DELAY, MAX_RETRY_AFTER, Decision, Outcome, backoff, decide
from clore.sandbox import BASE_URL, Sandbox

TRANSIENT = [
    Outcome.DATABASE,
    Outcome.RATE_LIMITED,
    Outcome.SERVER_ERROR,
    Outcome.NOT_CONNECTED,
    Outcome.TIMEOUT,
    Outcome.DROPPED,
]


class Fixed:
    """An rng whose uniform() returns its upper bound (worst-case jitter)."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize("outcome", TRANSIENT)
def test_reads_retry_every_transient_outcome(outcome: Outcome) -> None:
    """An idempotent read is retried after any transient failure."""
    assert decide(1, outcome, idempotent=True, max_retries=3).retry


def test_fatal_outcomes_are_never_retried() -> None:
    """A fatal outcome is not retried, read or write."""
    assert decide(1, Outcome.FATAL, idempotent=True, max_retries=3) == Decision(False)


@pytest.mark.parametrize("outcome", [Outcome.RATE_LIMITED, Outcome.NOT_CONNECTED])
def test_writes_retry_only_when_nothing_was_done(outcome: Outcome) -> None:
    """A write is retried only after a rate-limit refusal or a connection never made."""
    assert decide(1, outcome, idempotent=False, max_retries=3).retry


@pytest.mark.parametrize(
    "outcome", [Outcome.DATABASE, Outcome.SERVER_ERROR, Outcome.TIMEOUT, Outcome.DROPPED]
)
def test_writes_with_unknown_outcome_are_not_retried(outcome: Outcome) -> None:
    """A write whose outcome is unknown is not repeated."""
    assert not decide(1, outcome, idempotent=False, max_retries=3).retry


def test_retries_stop_after_max_retries() -> None:
    """Attempt max_retries+1 is the last one."""
    assert decide(3, Outcome.TIMEOUT, idempotent=True, max_retries=3).retry
    assert not decide(4, Outcome.TIMEOUT, idempotent=True, max_retries=3).retry
    assert not decide(1, Outcome.TIMEOUT, idempotent=True, max_retries=0).retry


def test_backoff_doubles_from_half_a_second_and_caps_at_eight() -> None:
    """The ceiling doubles per attempt from 0.5 s and never exceeds 8 s."""
    worst = [backoff(n, Fixed()) for n in range(1, 9)]
    assert worst == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert backoff(1000, Fixed()) == MAX_DELAY


def test_backoff_has_equal_jitter() -> None:
    """Pauses fall between half the ceiling and the ceiling, and vary."""
    rng = random.Random(7)
    pauses = [backoff(3, rng) for _ in range(200)]
    assert all(1.0 <= p <= 2.0 for p in pauses)
    assert len({round(p, 6) for p in pauses}) > 100


def test_retry_after_is_a_floor_capped_at_a_minute() -> None:
    """The server's Retry-After lengthens the pause, up to MAX_RETRY_AFTER."""
    rng = Fixed()
    rate = Outcome.RATE_LIMITED
    assert decide(1, rate, idempotent=True, max_retries=3, retry_after=7, rng=rng).delay == 7
    assert decide(1, rate, idempotent=True, max_retries=3, retry_after=0.1, rng=rng).delay == 0.5
    long = decide(1, rate, idempotent=True, max_retries=3, retry_after=3600, rng=rng)
    assert long.delay == MAX_RETRY_AFTER


# --------------------------------------------------------------------------- through the client

#: How a test makes one request fail: a sandbox fault, or a network that refuses it.
NETWORK = ("connect", "connect_timeout")


def _fail(sandbox: Sandbox, wire: Wire, endpoint: str, fault: str, count: int = 1) -> None:
    if fault in NETWORK:
        wire.network.unreachable(endpoint, *[fault] * count)
    else:
        sandbox.inject_fault(endpoint, fault, count=count)


def _arrived(wire: Wire, endpoint: str) -> int:
    """Requests to ``endpoint`` that left the client (reached the sandbox or were refused)."""
    return len(wire.sent(endpoint)) + wire.network.refused


@pytest.mark.parametrize(
    "fault",
    [
        "db_error",
        "rate_limit_200",
        "rate_limit",
        "http_500",
        "http_502_json",
        "timeout",
        "connect",
        "connect_timeout",
    ],
)
def test_reads_recover_from_one_transient_failure(
    fault: str, sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """A read answered by a transient failure once is retried and succeeds."""
    _fail(sandbox, wire, "wallets", fault)
    assert [w.name for w in client.wallets()] == ["bitcoin", "CLORE-Blockchain", "USD-Blockchain"]
    assert _arrived(wire, "wallets") == 2


def test_reads_give_up_after_max_retries(sandbox: Sandbox, wire: Wire, client: Clore) -> None:
    """Four failures with max_retries=3 raise the last error; four requests were sent."""
    sandbox.inject_fault("wallets", "http_500", count=5)
    with pytest.raises(clore.UnexpectedResponseError):
        client.wallets()
    assert len(wire.sent("wallets")) == 4


def test_retry_after_header_is_honoured(sandbox: Sandbox, wire: Wire, client: Clore) -> None:
    """A 429 with Retry-After: 4 makes the client wait at least 4 s before retrying."""
    sandbox.inject_fault("wallets", "rate_limit", seconds=4)
    client.wallets()
    first, second = (s.at for s in wire.sent("wallets"))
    assert second - first >= 4.0
    assert wire.sent("wallets")[0].status == 429


@pytest.mark.parametrize("fault", ["timeout", "http_500", "db_error", "drop_after_commit"])
def test_writes_with_unknown_outcome_raise_after_one_attempt(
    fault: str, sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """cancel_order is sent once when its outcome is unknown, and the failure is raised."""
    order = rent(sandbox)
    sandbox.inject_fault("cancel_order", fault)
    with pytest.raises(clore.CloreError):
        client.cancel_order(order)
    assert len(wire.sent("cancel_order")) == 1


@pytest.mark.parametrize("fault", ["rate_limit", "rate_limit_200", "connect", "connect_timeout"])
def test_writes_are_retried_when_nothing_was_done(
    fault: str, sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """cancel_order refused for the rate limit or never sent is retried and succeeds."""
    order = rent(sandbox)
    _fail(sandbox, wire, "cancel_order", fault)
    client.cancel_order(order)
    assert _arrived(wire, "cancel_order") == 2
    assert [o.ended for o in mine(sandbox)] == [True]


def test_authentication_errors_are_not_retried(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """A 401 is raised at once."""
    c = Clore("f" * 32, base_url=BASE_URL, transport=wire.transport(), clock=clock)
    with pytest.raises(clore.AuthenticationError):
        c.wallets()
    assert [s.status for s in wire.sent("wallets")] == [401]


def test_max_retries_zero_disables_retries(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """With max_retries=0 the first transient failure is raised."""
    c = Clore(
        sandbox.demo_key, base_url=BASE_URL, transport=wire.transport(), clock=clock, max_retries=0
    )
    sandbox.inject_fault("wallets", "db_error")
    with pytest.raises(clore.DatabaseError):
        c.wallets()
    assert len(wire.sent("wallets")) == 1
