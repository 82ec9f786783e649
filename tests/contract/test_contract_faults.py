"""Contract: failures on the way — create_order rents exactly once, reads are retried."""

from __future__ import annotations

import pytest
from contract_targets import IMAGE, Target, cheapest

from clore import DatabaseError, UnexpectedResponseError

FAULTS = ["drop_after_commit", "timeout", "http_500", "db_error", "rate_limit"]
#: The faults a read is retried after (a 200 that is not JSON is not retried).
READ_FAULTS = [
    *FAULTS,
    "rate_limit_200",
    "http_502_json",
    "timeout_after_commit",
    "http_500_after_commit",
    "late_commit",
]
#: Every fault after which create_order still ends with the one order it made.
CREATE_FAULTS = [*READ_FAULTS, "garbled_after_commit"]


@pytest.mark.parametrize("fault", CREATE_FAULTS)
def test_create_order_rents_exactly_once_despite_a_fault(target: Target, fault: str) -> None:
    """One failed create_order attempt: exactly one order exists and it is the one returned."""
    client = target.client(timeout=1.0)
    server = cheapest(target.client())
    target.inject_fault("create_order", fault)
    order = client.create_order(server.id, IMAGE)
    assert target.faults() == [] and order.si == server.id
    assert [o.id for o in client.my_orders(include_completed=True)] == [order.id]


@pytest.mark.parametrize("fault", ["http_500", "db_error"])
def test_create_order_rents_exactly_once_despite_repeated_faults(
    target: Target, fault: str
) -> None:
    """Two attempts in a row fail without acting: the third rents, exactly once."""
    client = target.client()
    server = cheapest(client)
    target.inject_fault("create_order", fault, count=2)
    order = client.create_order(server.id, IMAGE)
    assert target.faults() == []
    assert [o.id for o in client.my_orders(include_completed=True)] == [order.id]


@pytest.mark.parametrize("endpoint", ["marketplace", "my_orders", "wallets", "my_servers"])
def test_reads_are_retried_on_database_errors(target: Target, endpoint: str) -> None:
    """Two code-1 answers in a row: the read is retried and returns its result."""
    client = target.client()
    expected = getattr(client, endpoint)()
    target.inject_fault(endpoint, "db_error", count=2)
    assert getattr(client, endpoint)() == expected
    assert target.faults() == []


@pytest.mark.parametrize("fault", READ_FAULTS)
def test_a_read_survives_any_single_fault(target: Target, fault: str) -> None:
    """my_orders after a dropped, timed-out, 5xx, code-1, code-5 or held attempt: retried."""
    client = target.client(timeout=1.0)
    order = client.create_order(cheapest(client).id, IMAGE)
    target.inject_fault("my_orders", fault)
    assert [o.id for o in client.my_orders()] == [order.id]
    assert target.faults() == []


def test_reads_give_up_after_max_retries(target: Target) -> None:
    """More code-1 answers than max_retries allows: DatabaseError."""
    client = target.client(max_retries=1)
    target.inject_fault("wallets", "db_error", count=3)
    with pytest.raises(DatabaseError):
        client.wallets()


def test_a_rate_limited_write_is_retried(target: Target) -> None:
    """A 429 means nothing was done: cancel_order is sent again and the order ends."""
    client = target.client()
    order = client.create_order(cheapest(client).id, IMAGE)
    target.inject_fault("cancel_order", "rate_limit")
    client.cancel_order(order.id)
    assert client.get_order(order.id).expired


def test_a_write_with_an_unknown_outcome_is_not_repeated(target: Target) -> None:
    """An HTTP 500 on cancel_order surfaces as UnexpectedResponseError; it is not resent."""
    client = target.client()
    order = client.create_order(cheapest(client).id, IMAGE)
    target.inject_fault("cancel_order", "http_500", count=2)
    with pytest.raises(UnexpectedResponseError) as caught:
        client.cancel_order(order.id)
    assert caught.value.status_code == 500
    assert target.faults() == [("cancel_order", "http_500", 1)]  # one attempt, not two
    assert not client.get_order(order.id).expired
