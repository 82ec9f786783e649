"""The vendor guide's CloreClient runs unchanged on top of Clore, paced and exactly-once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import clore
from _stub.fake_api import BASE_URL, KEY, FakeAPI
from clore import CloreAPIError, CloreClient
from clore._clock import ManualClock


@pytest.fixture
def guide(api: FakeAPI, clock: ManualClock) -> Iterator[CloreClient]:
    api.servers = [{"id": 1, "specs": {"gpu": "1x NVIDIA GeForce RTX 4090"}}, {"id": 2}]
    with CloreClient(KEY, base_url=BASE_URL, transport=api.transport(), clock=clock) as client:
        yield client


def test_constructor_takes_the_guides_arguments(api: FakeAPI) -> None:
    """CloreClient(api_key, timeout, rate_limit, max_retries) is accepted as in the guide."""
    client = CloreClient(
        api_key=KEY, timeout=30, rate_limit=1.1, max_retries=3, clock=ManualClock()
    )
    assert client.client.pacing.min_interval == 1.1
    assert client.client.max_retries == 3
    assert CloreClient.BASE_URL == "https://api.clore.ai"
    assert CloreClient.ERROR_CODES[5] == "Rate limit exceeded"


def test_list_servers_returns_plain_dicts(guide: CloreClient) -> None:
    """list_servers gives the marketplace records as plain dicts, untouched."""
    servers = guide.list_servers()
    assert servers == [{"id": 1, "specs": {"gpu": "1x NVIDIA GeForce RTX 4090"}}, {"id": 2}]


def test_get_server_details_finds_one_server(guide: CloreClient) -> None:
    """get_server_details returns the record with that id."""
    assert guide.get_server_details(2) == {"id": 2}


def test_get_server_details_of_unknown_server_raises(guide: CloreClient) -> None:
    """An unknown id raises CloreAPIError with error server-not-found."""
    with pytest.raises(CloreAPIError) as info:
        guide.get_server_details(99)
    assert (info.value.code, info.value.error) == (6, "server-not-found")


def test_create_order_returns_the_new_order_as_a_dict(api: FakeAPI, guide: CloreClient) -> None:
    """create_order returns code 0 plus the new order's fields, its id included."""
    result = guide.create_order(
        server_id=1,
        image="cloreai/ubuntu22.04-cuda12",
        order_type="on-demand",
        currency="bitcoin",
        ssh_password="abc123",
        ports={"22": "tcp"},
    )
    assert result["code"] == 0
    assert result["id"] == api.created()[0]["id"] and result["si"] == 1
    assert isinstance(result, dict)


def test_create_order_is_exactly_once_through_the_guide(api: FakeAPI, guide: CloreClient) -> None:
    """A lost answer after the server committed still yields one order, returned."""
    api.inject("create_order", "drop_after_commit")
    result = guide.create_order(1, "img")
    assert [o["id"] for o in api.created()] == [result["id"]]


def test_get_orders_and_cancel_order(api: FakeAPI, guide: CloreClient) -> None:
    """get_orders lists plain order dicts; cancel_order answers {"code": 0}."""
    order = api.add_order()
    assert [o["id"] for o in guide.get_orders()] == [order["id"]]
    assert guide.cancel_order(order["id"], issue="no GPU") == {"code": 0}
    assert guide.get_orders() == []
    assert [o["id"] for o in guide.get_orders(include_completed=True)] == [order["id"]]


def test_wallets_and_my_servers(guide: CloreClient) -> None:
    """get_wallets and get_my_servers give lists of dicts as the API sends them."""
    wallets = guide.get_wallets()
    assert wallets[1] == {"name": "CLORE-Blockchain", "deposit": "AXx", "balance": None}
    assert guide.get_my_servers()[0]["name"] == "rig-1"


def test_api_errors_are_clore_api_errors_with_code_and_error(
    api: FakeAPI, guide: CloreClient
) -> None:
    """A refusal raises CloreAPIError with .code, .error and the response body."""
    api.responses["create_order"] = {"code": 6, "error": "not_enough_balance"}
    with pytest.raises(CloreAPIError) as info:
        guide.create_order(1, "img")
    error = info.value
    assert (error.code, error.error) == (6, "not_enough_balance")
    assert error.response == {"code": 6, "error": "not_enough_balance"}
    assert isinstance(error, clore.APIError)
    assert isinstance(error.__cause__, clore.NotEnoughBalanceError)


def test_every_code_surfaces_as_clore_api_error(api: FakeAPI, guide: CloreClient) -> None:
    """Codes 1 to 6 from any guide method raise CloreAPIError carrying the code."""
    for code in (1, 2, 3, 4, 6):
        api.responses["wallets"] = {"code": code}
        with pytest.raises(CloreAPIError) as info:
            guide.get_wallets()
        assert info.value.code == code


def test_guide_calls_are_paced_not_slept(
    api: FakeAPI, guide: CloreClient, clock: ManualClock
) -> None:
    """A loop of guide calls waits just over 1 s between calls and trips no rate limit."""
    for _ in range(4):
        guide.get_wallets()
    assert clock.slept == pytest.approx([1.01] * 3)
    assert api.rejected == 0


def test_low_level_request_goes_through_the_same_pacing(api: FakeAPI, guide: CloreClient) -> None:
    """_request('GET', '/v1/...') returns the body dict; unknown endpoints raise code 4."""
    body: dict[str, Any] = guide._request("GET", "/v1/spot_marketplace", params={"market": 1})
    assert body["exists"] is True
    with pytest.raises(CloreAPIError) as info:
        guide._request("GET", "/v1/nope")
    assert info.value.code == 4


def test_validation_errors_stay_value_errors(api: FakeAPI, guide: CloreClient) -> None:
    """Bad arguments raise ParameterError (a ValueError) and send nothing."""
    with pytest.raises(ValueError, match="ssh_password"):
        guide.create_order(1, "img", ssh_password="not allowed!")
    assert api.seen == []
