"""The vendor guide's CloreClient runs unchanged on top of Clore, paced and exactly-once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import clore
from _stub.wire import Wire, free_server, mine, rent, rented_server
from clore import CloreAPIError, CloreClient
from clore._clock import ManualClock
from clore.sandbox import BASE_URL, Sandbox


@pytest.fixture
def guide(sandbox: Sandbox, wire: Wire, clock: ManualClock) -> Iterator[CloreClient]:
    with CloreClient(
        sandbox.demo_key, base_url=BASE_URL, transport=wire.transport(), clock=clock
    ) as client:
        yield client


def test_constructor_takes_the_guides_arguments() -> None:
    """CloreClient(api_key, timeout, rate_limit, max_retries) is accepted as in the guide."""
    client = CloreClient(
        api_key="k" * 32, timeout=30, rate_limit=1.1, max_retries=3, clock=ManualClock()
    )
    assert client.client.pacing.min_interval == 1.1
    assert client.client.max_retries == 3
    assert CloreClient.BASE_URL == "https://api.clore.ai"
    assert CloreClient.ERROR_CODES[5] == "Rate limit exceeded"


def test_list_servers_returns_plain_dicts(guide: CloreClient, wire: Wire) -> None:
    """list_servers gives the marketplace records as plain dicts, untouched."""
    servers = guide.list_servers()
    assert len(servers) == 3500 and all(type(s) is dict for s in servers)
    sent = json.loads(wire.sent("marketplace")[0].answer)["servers"]
    assert servers == sent


def test_get_server_details_finds_one_server(sandbox: Sandbox, guide: CloreClient) -> None:
    """get_server_details returns the record with that id."""
    sid = free_server(sandbox)
    details = guide.get_server_details(sid)
    assert details["id"] == sid and "specs" in details


def test_get_server_details_of_unknown_server_raises(guide: CloreClient) -> None:
    """An unknown id raises CloreAPIError with error server-not-found."""
    with pytest.raises(CloreAPIError) as info:
        guide.get_server_details(999_999_999)
    assert (info.value.code, info.value.error) == (6, "server-not-found")


def test_create_order_returns_the_new_order_as_a_dict(sandbox: Sandbox, guide: CloreClient) -> None:
    """create_order returns code 0 plus the new order's fields, its id included."""
    sid = free_server(sandbox)
    result = guide.create_order(
        server_id=sid,
        image="cloreai/ubuntu22.04-cuda12",
        order_type="on-demand",
        currency="bitcoin",
        ssh_password="abc123",
        ports={"22": "tcp"},
    )
    assert result["code"] == 0
    assert result["id"] == mine(sandbox)[0].id and result["si"] == sid
    assert isinstance(result, dict)


def test_create_order_is_exactly_once_through_the_guide(
    sandbox: Sandbox, guide: CloreClient
) -> None:
    """A lost answer after the server committed still yields one order, returned."""
    sandbox.inject_fault("create_order", "drop_after_commit")
    result = guide.create_order(free_server(sandbox), "img")
    assert [o.id for o in mine(sandbox)] == [result["id"]]


def test_get_orders_and_cancel_order(sandbox: Sandbox, guide: CloreClient) -> None:
    """get_orders lists plain order dicts; cancel_order answers {"code": 0}."""
    order = rent(sandbox)
    assert [o["id"] for o in guide.get_orders()] == [order]
    assert guide.cancel_order(order, issue="no GPU") == {"code": 0}
    assert guide.get_orders() == []
    assert [o["id"] for o in guide.get_orders(include_completed=True)] == [order]


def test_wallets_and_my_servers(guide: CloreClient, wire: Wire) -> None:
    """get_wallets and get_my_servers give lists of dicts as the API sends them."""
    wallets = guide.get_wallets()
    assert wallets == json.loads(wire.seen[-1].answer)["wallets"]
    assert [w["name"] for w in wallets] == ["bitcoin", "CLORE-Blockchain", "USD-Blockchain"]
    servers = guide.get_my_servers()
    assert servers == json.loads(wire.seen[-1].answer)["servers"]
    assert servers and all(type(s) is dict and s["name"] for s in servers)


def test_api_errors_are_clore_api_errors_with_code_and_error(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """A refusal raises CloreAPIError with .code, .error and the response body."""
    broke, _ = sandbox.create_user("broke", {})
    guide = CloreClient(broke, base_url=BASE_URL, transport=wire.transport(), clock=clock)
    with pytest.raises(CloreAPIError) as info:
        guide.create_order(free_server(sandbox), "img")
    error = info.value
    assert (error.code, error.error) == (6, "not_enough_balance")
    assert error.response == {"code": 6, "error": "not_enough_balance"}
    assert isinstance(error, clore.APIError)
    assert isinstance(error.__cause__, clore.NotEnoughBalanceError)


def test_every_code_surfaces_as_clore_api_error(
    sandbox: Sandbox, wire: Wire, guide: CloreClient, clock: ManualClock
) -> None:
    """Codes 1 to 6 from the guide's methods raise CloreAPIError carrying the code."""
    stranger = CloreClient("f" * 32, base_url=BASE_URL, transport=wire.transport(), clock=clock)
    sandbox.inject_fault("wallets", "db_error", count=4)
    sandbox.inject_fault("my_orders", "rate_limit", count=4)
    failing = {
        1: guide.get_wallets,
        2: lambda: guide._request("POST", "/v1/cancel_order", json={"id": "not a number"}),
        3: stranger.get_wallets,
        4: lambda: guide._request("GET", "/v1/nope"),
        5: guide.get_orders,
        6: lambda: guide.create_order(rented_server(sandbox), "img"),
    }
    for code, call in failing.items():
        with pytest.raises(CloreAPIError) as info:
            call()
        assert info.value.code == code


def test_guide_calls_are_paced_not_slept(
    wire: Wire, guide: CloreClient, clock: ManualClock
) -> None:
    """A loop of guide calls waits just over 1 s between calls and trips no rate limit."""
    for _ in range(4):
        guide.get_wallets()
    assert clock.slept == pytest.approx([1.01] * 3)
    assert wire.rejected == 0 and len(wire.seen) == 4


def test_low_level_request_goes_through_the_same_pacing(
    sandbox: Sandbox, guide: CloreClient
) -> None:
    """_request('GET', '/v1/...') returns the body dict; unknown endpoints raise code 4."""
    sid = free_server(sandbox, spot=True)
    body: dict[str, Any] = guide._request("GET", "/v1/spot_marketplace", params={"market": sid})
    assert body["exists"] is True
    with pytest.raises(CloreAPIError) as info:
        guide._request("GET", "/v1/nope")
    assert info.value.code == 4


def test_validation_errors_stay_value_errors(
    sandbox: Sandbox, wire: Wire, guide: CloreClient
) -> None:
    """Bad arguments raise ParameterError (a ValueError) and send nothing."""
    with pytest.raises(ValueError, match="ssh_password"):
        guide.create_order(free_server(sandbox), "img", ssh_password="not allowed!")
    assert wire.seen == []
