"""In-process transports, injected faults as a client sees them, and the SDK against the sandbox."""

from __future__ import annotations

import httpx
import pytest

from clore import APIConnectionError, ServerAlreadyRentedError
from clore._client import AsyncClore, Clore
from clore._clock import ManualClock
from clore.sandbox import Sandbox

BODY = {"currency": "bitcoin", "image": "ubuntu", "renting_server": 1, "type": "on-demand"}


def orders_of(api: httpx.Client, completed: bool = False) -> list[dict[str, object]]:
    query = {"return_completed": "true"} if completed else {}
    return api.get("/my_orders", params=query).json()["orders"]  # type: ignore[no-any-return]


def test_timeout_fault_raises_read_timeout_and_changes_nothing(
    small: Sandbox, api: httpx.Client
) -> None:
    """In-process, timeout raises httpx.ReadTimeout and the order is not created."""
    small.inject_fault("create_order", "timeout")
    with pytest.raises(httpx.ReadTimeout):
        api.post("/create_order", json=BODY)
    assert orders_of(api) == []
    assert api.post("/create_order", json=BODY).json() == {"code": 0}


def test_drop_after_commit_raises_after_the_change(small: Sandbox, api: httpx.Client) -> None:
    """In-process, drop_after_commit commits the order, then raises RemoteProtocolError."""
    small.inject_fault("create_order", "drop_after_commit")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/create_order", json=BODY)
    assert [o["si"] for o in orders_of(api)] == [1]


def test_faults_count_down_per_endpoint(small: Sandbox, api: httpx.Client) -> None:
    """A fault hits only its endpoint and only `count` times."""
    small.inject_fault("wallets", "db_error", count=2)
    assert [api.get("/wallets").json()["code"] for _ in range(3)] == [1, 1, 0]
    assert api.get("/my_orders").json()["code"] == 0
    assert small.faults() == []


async def test_async_transport(small: Sandbox) -> None:
    """The async transport answers like the sync one, faults included."""
    async with httpx.AsyncClient(
        transport=small.async_transport(),
        base_url="http://sandbox.local/v1",
        headers={"auth": small.demo_key},
    ) as client:
        assert (await client.post("/create_order", json=BODY)).json() == {"code": 0}
        small.inject_fault("my_orders", "timeout")
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/my_orders")
        assert len((await client.get("/my_orders")).json()["orders"]) == 1


def test_sdk_rents_exactly_once_despite_a_dropped_answer(
    small: Sandbox, clock: ManualClock
) -> None:
    """Clore.create_order finds its order after the answer was dropped, and does not rent twice."""
    with small.client() as client:
        small.inject_fault("create_order", "drop_after_commit")
        order = client.create_order(1, "ubuntu:22.04")
        assert order.server_id == 1
        assert [o.id for o in client.my_orders()] == [order.id]


def test_sdk_sees_provisioning_and_billing(small: Sandbox, clock: ManualClock) -> None:
    """The SDK waits for provisioning on the shared clock (until the order's SSH answers
    on loopback) and reads spend and balances."""
    with small.client() as client:
        order = client.create_order(1, "ubuntu:22.04", ports={"22": "tcp"})
        ready = client.wait_for_order(order.id, timeout=120)
        assert ready.ssh_endpoint is not None and ready.ssh_endpoint[0] == "127.0.0.1"
        clock.advance(3600)
        assert client.get_order(order.id).spend == pytest.approx(0.0864 / 24, rel=0.01)
        with pytest.raises(ServerAlreadyRentedError):
            client.create_order(1, "ubuntu:22.04")


def test_sdk_sees_a_dropped_read_as_a_connection_error(small: Sandbox) -> None:
    """A read whose connection drops surfaces as a connection error once retries run out."""
    small.inject_fault("wallets", "drop_after_commit", count=10)
    with small.client(max_retries=0) as client, pytest.raises(APIConnectionError):
        client.wallets()


def test_clore_client_fixture(clore_client: Clore, sandbox: Sandbox) -> None:
    """clore_client is the demo user on the seeded sandbox, paced on the shared clock."""
    assert len(clore_client.marketplace()) == 3500
    assert {w.name for w in clore_client.wallets()} == {
        "bitcoin",
        "CLORE-Blockchain",
        "USD-Blockchain",
    }
    assert [s.id for s in clore_client.my_servers()] == sandbox.backend.marketplace(
        sandbox.backend.authenticate(sandbox.demo_key), -1
    ).my_servers


async def test_async_clore_client_fixture(async_clore_client: AsyncClore) -> None:
    """async_clore_client is the demo user too."""
    wallets = await async_clore_client.wallets()
    assert wallets[0].balance == 0.1


def test_rate_limit_applies_to_sdk_clients_without_pacing(sandbox: Sandbox) -> None:
    """Two back-to-back calls of one key without pacing: the second is rate limited."""
    from clore import RateLimitError
    from clore._pacing import Pacing

    with sandbox.client(pacing=Pacing.disabled(), max_retries=0) as client:
        client.wallets()
        with pytest.raises(RateLimitError):
            client.wallets()
