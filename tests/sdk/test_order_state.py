"""``Order.state`` and ``Order.state_at``: what an order is doing, from the API's record."""

from __future__ import annotations

import pytest

from clore import Clore, Order
from clore.sandbox import Sandbox

PROVISIONED = {"pub_cluster": ["n1.clore.ai"], "tcp_ports": ["22:40022"]}


def _available(client: Clore, *, spot: bool = False) -> int:
    """The id of the cheapest available server (with a spot minimum when ``spot``)."""
    servers = [s for s in client.marketplace() if not s.rented and s.accepts("bitcoin")]
    if spot:
        servers = [s for s in servers if "bitcoin" in s.price.spot]
    return min(servers, key=lambda s: float(s.price.on_demand.get("bitcoin", 1e9))).id


def test_a_new_order_provisions_then_runs(sandbox: Sandbox, clore_client: Clore) -> None:
    """A new order is provisioning, and running once the sandbox has provisioned it."""
    order = clore_client.create_order(_available(clore_client), "cloreai/ubuntu22.04")
    ready = clore_client.wait_for_order(order.id)
    now = clore_client.server_time()
    assert [order.state, ready.state, ready.state_at(now)] == [
        "provisioning",
        "running",
        "running",
    ]


def test_a_cancelled_order_is_cancelled_not_expired(sandbox: Sandbox, clore_client: Clore) -> None:
    """An order cancelled long before ct + mrl is ``cancelled``; its record alone says ``ended``."""
    order = clore_client.create_order(_available(clore_client), "cloreai/ubuntu22.04")
    clore_client.cancel_order(order.id)
    ended = clore_client.get_order(order.id)
    assert (ended.state, ended.state_at(clore_client.server_time())) == ("ended", "cancelled")


def test_an_order_that_ran_its_course_is_expired(sandbox: Sandbox, clore_client: Clore) -> None:
    """An order that ended at ct + mrl (the sandbox's clock moved past it) is ``expired``."""
    order = clore_client.create_order(_available(clore_client), "cloreai/ubuntu22.04")
    sandbox.advance(float(order.mrl) + 120)
    ended = clore_client.get_order(order.id)
    assert (ended.expired, ended.state_at(clore_client.server_time())) == (True, "expired")


@pytest.mark.parametrize(
    ("fields", "spot_active", "expected"),
    [
        ({}, None, "provisioning"),
        (PROVISIONED, None, "running"),
        ({**PROVISIONED, "online": False}, None, "offline"),
        ({**PROVISIONED, "spot": True}, False, "outbid"),
        ({**PROVISIONED, "spot": True}, True, "running"),
        ({**PROVISIONED, "spot": True}, None, "running"),
        ({"spot": True}, False, "outbid"),
        ({**PROVISIONED, "spot": False}, False, "running"),
        ({"expired": True, "ct": 1000, "mrl": 3600}, None, "expired"),
        ({"expired": True, "ct": 1000, "mrl": 3600, "spot": True}, False, "expired"),
        ({"expired": True, "ct": 1000, "mrl": 7200}, None, "cancelled"),
        ({"expired": True, "ct": 4000, "mrl": 0}, None, "cancelled"),
    ],
)
def test_state_at_tells_every_state_apart(
    fields: dict[str, object], spot_active: bool | None, expected: str
) -> None:
    """``state_at(now)``: ended at its end or early, outbid only for a losing spot bid."""
    order = Order(id=1, **fields)  # type: ignore[arg-type]
    assert order.state_at(4600.0, spot_active=spot_active) == expected


def test_an_end_within_the_slack_counts_as_run_to_its_end() -> None:
    """An order ended up to ``slack`` seconds before ct + mrl expired; a second more, cancelled."""
    order = Order(id=1, expired=True, ct=1000, mrl=3600)
    assert [order.state_at(4540.0), order.state_at(4539.0), order.state_at(4500, slack=100)] == [
        "expired",
        "cancelled",
        "expired",
    ]
