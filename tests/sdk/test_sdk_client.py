"""Clore and AsyncClore: one method per endpoint, configuration sources, lifetime."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import clore
from _stub.fake_api import BASE_URL, KEY, FakeAPI
from clore import AsyncClore, Clore, config
from clore._clock import ManualClock
from clore._wire import MyServer, Order, PohBalance, RenterFees, ServerConfig, SpotMarket, Wallet


def _check_marketplace(api: FakeAPI, result: Any) -> None:
    assert [s.id for s in result] == [1, 2]
    assert api.seen[-1].method == "GET"


def _check_spot(api: FakeAPI, result: Any) -> None:
    assert isinstance(result, SpotMarket)
    assert api.seen[-1].params == {"market": "1"}


def _check_my_orders(api: FakeAPI, result: Any) -> None:
    assert [type(o) for o in result] == [Order]
    assert api.seen[-1].params == {"return_completed": "false"}


def _check_wallets(api: FakeAPI, result: Any) -> None:
    assert result[0] == Wallet("bitcoin", "bc1q", 0.0419, 5e-5)
    assert result[1].balance is None


def _check_my_servers(api: FakeAPI, result: Any) -> None:
    assert result == [MyServer(name="rig-1", id=7, connected=True, pricing={"bitcoin": 1})]


def _check_server_config(api: FakeAPI, result: Any) -> None:
    assert isinstance(result, ServerConfig) and result.mrl == 72
    assert (api.seen[-1].method, api.seen[-1].body) == ("GET", {"server_name": "rig-1"})


def _check_cancel(api: FakeAPI, result: Any) -> None:
    assert result is None
    assert api.seen[-1].body == {"id": 1001, "issue": "GPU fell off the bus"}


def _check_spot_price(api: FakeAPI, result: Any) -> None:
    assert api.seen[-1].body == {"order_id": 1001, "desired_price": 0.5}


def _check_settings(api: FakeAPI, result: Any) -> None:
    assert api.seen[-1].body == {"name": "rig-1", "availability": False, "mrl": 48}


def _check_fees(api: FakeAPI, result: Any) -> None:
    assert isinstance(result, RenterFees)
    assert result.fee_percent("spot", "bitcoin") == 2.5


def _check_poh(api: FakeAPI, result: Any) -> None:
    assert result == PohBalance(balance=123.5)


def _check_get_order(api: FakeAPI, result: Any) -> None:
    assert result.id == 1001
    assert api.seen[-1].params == {"return_completed": "true"}


ENDPOINT_CALLS = [
    ("marketplace", (), {}, _check_marketplace),
    ("spot_marketplace", (1,), {}, _check_spot),
    ("my_orders", (), {}, _check_my_orders),
    ("get_order", (1001,), {}, _check_get_order),
    ("cancel_order", (1001,), {"issue": "GPU fell off the bus"}, _check_cancel),
    ("set_spot_price", (1001, 0.5), {}, _check_spot_price),
    ("wallets", (), {}, _check_wallets),
    ("my_servers", (), {}, _check_my_servers),
    ("server_config", ("rig-1",), {}, _check_server_config),
    ("set_server_settings", ("rig-1",), {"availability": False, "mrl": 48}, _check_settings),
    ("renter_fees", (), {}, _check_fees),
    ("poh_balance", (), {}, _check_poh),
]


@pytest.fixture
def seeded(api: FakeAPI) -> FakeAPI:
    api.servers = [{"id": 1}, {"id": 2, "rented": True}]
    api.add_order()
    return api


@pytest.mark.parametrize(("name", "args", "kwargs", "check"), ENDPOINT_CALLS)
def test_every_endpoint_sync(
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    check: Any,
    seeded: FakeAPI,
    client: Clore,
) -> None:
    """Each sync method calls its endpoint and returns the typed result."""
    check(seeded, getattr(client, name)(*args, **kwargs))
    assert seeded.seen[-1].endpoint == ("my_orders" if name == "get_order" else name)


@pytest.mark.parametrize(("name", "args", "kwargs", "check"), ENDPOINT_CALLS)
async def test_every_endpoint_async(
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    check: Any,
    seeded: FakeAPI,
    aclient: AsyncClore,
) -> None:
    """Each async method calls its endpoint and returns the same typed result."""
    check(seeded, await getattr(aclient, name)(*args, **kwargs))


def test_create_order_body_uses_the_api_field_names(api: FakeAPI, client: Clore) -> None:
    """create_order sends renting_server/type/spotprice and the normalised options."""
    order = client.create_order(
        1,
        "cloreai/jupyter",
        order_type="spot",
        currency="btc",
        spotprice=0.00002,
        ports={22: "tcp", "8888": "http"},
        ssh_password="Secret123",
        jupyter_token="tok",
        env={"A": "1"},
        command="echo hi",
        required_price=0.00002,
        autossh_entrypoint=True,
    )
    assert order.spot and order.si == 1
    assert api.sent("create_order")[0].body == {
        "currency": "bitcoin",
        "image": "cloreai/jupyter",
        "renting_server": 1,
        "type": "spot",
        "spotprice": 0.00002,
        "ports": {"22": "tcp", "8888": "http"},
        "env": {"A": "1"},
        "ssh_password": "Secret123",
        "jupyter_token": "tok",
        "command": "echo hi",
        "required_price": 0.00002,
        "autossh_entrypoint": True,
    }


def test_set_server_settings_per_currency_body(api: FakeAPI, client: Clore) -> None:
    """The per-currency settings form is sent with the API's flat keys."""
    client.set_server_settings("rig-1", per_currency={"clore": {"on_demand": 20, "enabled": True}})
    assert api.seen[-1].body == {
        "name": "rig-1",
        "CLORE-Blockchain_on_demand": 20.0,
        "enabled-CLORE-Blockchain": True,
    }


def test_spot_marketplace_of_unknown_server_raises(client: Clore) -> None:
    """`exists: false` raises ServerNotFoundError."""
    with pytest.raises(clore.ServerNotFoundError) as info:
        client.spot_marketplace(999)
    assert info.value.server_id == 999


def test_get_order_of_unknown_id_raises(client: Clore) -> None:
    """An id absent from my_orders raises OrderNotFoundError."""
    with pytest.raises(clore.OrderNotFoundError):
        client.get_order(4242)


def test_my_orders_can_include_completed(api: FakeAPI, client: Clore) -> None:
    """include_completed=True asks for completed orders and returns them."""
    api.add_order(expired=True)
    assert client.my_orders() == []
    assert [o.expired for o in client.my_orders(include_completed=True)] == [True]


# --------------------------------------------------------------------------- keys and config


def test_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, api: FakeAPI) -> None:
    """Without an argument the key is CLORE_API_KEY and the URL CLORE_BASE_URL."""
    monkeypatch.setenv("CLORE_API_KEY", KEY)
    monkeypatch.setenv("CLORE_BASE_URL", "https://env.test/v1/")
    c = Clore(transport=api.transport(), clock=ManualClock())
    c.wallets()
    assert (c.base_url, api.seen[-1].headers["auth"]) == ("https://env.test/v1", KEY)


def test_key_comes_from_the_active_profile(api: FakeAPI) -> None:
    """Without argument or environment, the active profile's key and URL are used."""
    config.set_profile("work", api_key=KEY, base_url="https://profile.test/v1")
    c = Clore(transport=api.transport(), clock=ManualClock())
    c.wallets()
    assert c.base_url == "https://profile.test/v1" and c.profile == "work"
    assert api.seen[-1].headers["auth"] == KEY


def test_argument_beats_environment(monkeypatch: pytest.MonkeyPatch, api: FakeAPI) -> None:
    """An explicit api_key wins over CLORE_API_KEY."""
    monkeypatch.setenv("CLORE_API_KEY", "from-env-xxxxxxxxxxxx")
    c = Clore(KEY, base_url=BASE_URL, transport=api.transport(), clock=ManualClock())
    c.wallets()
    assert api.seen[-1].headers["auth"] == KEY


def test_default_base_url_is_the_public_api() -> None:
    """With nothing configured the client points at https://api.clore.ai/v1."""
    assert Clore(transport=FakeAPI().transport()).base_url == "https://api.clore.ai/v1"


def test_missing_key_fails_locally_for_private_endpoints(api: FakeAPI, clock: ManualClock) -> None:
    """Without any key, private endpoints raise AuthenticationError and send nothing."""
    c = Clore(base_url=BASE_URL, transport=api.transport(), clock=clock)
    assert not c.has_api_key
    with pytest.raises(clore.AuthenticationError, match="no API key configured"):
        c.wallets()
    assert api.seen == []


def test_marketplace_works_without_a_key(api: FakeAPI, clock: ManualClock) -> None:
    """The public marketplace is fetched without an auth header when no key is set."""
    api.servers = [{"id": 3}]
    c = Clore(base_url=BASE_URL, transport=api.transport(), clock=clock)
    assert [s.id for s in c.marketplace()] == [3]
    assert "auth" not in api.seen[-1].headers


def test_user_agent_is_descriptive(api: FakeAPI, client: Clore) -> None:
    """Every request carries the clore-python User-Agent."""
    client.wallets()
    assert api.seen[-1].headers["user-agent"].startswith(f"clore-python/{clore.__version__} (")


@pytest.mark.parametrize(
    ("kwargs", "param"), [({"max_retries": -1}, "max_retries"), ({"timeout": 0}, "timeout")]
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], param: str) -> None:
    """Negative retries and non-positive timeouts are refused."""
    with pytest.raises(clore.ParameterError) as info:
        Clore(KEY, **kwargs)
    assert info.value.param == param


# --------------------------------------------------------------------------- HTTP layer


def test_injected_http_client_is_used_and_left_open(api: FakeAPI) -> None:
    """An injected httpx.Client is used for requests and not closed by close()."""
    http = httpx.Client(transport=api.transport())
    with Clore(KEY, base_url=BASE_URL, http_client=http, clock=ManualClock()) as c:
        c.wallets()
    assert not http.is_closed and len(api.seen) == 1
    http.close()


def test_context_manager_closes_its_own_client(api: FakeAPI) -> None:
    """Leaving the with-block closes the httpx client the Clore made."""
    with Clore(KEY, base_url=BASE_URL, transport=api.transport()) as c:
        pass
    assert c._http.is_closed


async def test_async_context_manager_closes_its_own_client(api: FakeAPI) -> None:
    """Leaving the async with-block closes the AsyncClient the AsyncClore made."""
    async with AsyncClore(KEY, base_url=BASE_URL, transport=api.transport()) as c:
        pass
    assert c._http.is_closed


def test_client_and_transport_together_are_refused() -> None:
    """Passing both http_client and transport is a ValueError."""
    with pytest.raises(ValueError, match="not both"):
        Clore(KEY, http_client=httpx.Client(), transport=httpx.MockTransport(lambda r: None))  # type: ignore[arg-type,return-value]


async def test_async_calls_are_paced(api: FakeAPI, aclient: AsyncClore, clock: ManualClock) -> None:
    """Three async reads are spaced 1.01 s apart with no 429."""
    for _ in range(3):
        await aclient.wallets()
    assert clock.slept == pytest.approx([1.01, 1.01])
    assert api.rejected == 0


async def test_concurrent_async_tasks_share_pacing(
    api: FakeAPI, aclient: AsyncClore, clock: ManualClock
) -> None:
    """Tasks of one AsyncClore running at once never trip the rate limit."""
    import asyncio

    await asyncio.gather(*(aclient.wallets() for _ in range(5)))
    assert api.rejected == 0 and len(api.seen) == 5


def test_connection_errors_become_clore_errors(clock: ManualClock) -> None:
    """A refused connection surfaces as APIConnectionError after the retries."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    c = Clore(KEY, base_url=BASE_URL, transport=httpx.MockTransport(refuse), clock=clock)
    with pytest.raises(clore.APIConnectionError, match="wallets: ConnectError"):
        c.wallets()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://nowhere/v1", "expected an http:// or https:// URL"),
        ("127.0.0.1:8765/v1", "expected an http:// or https:// URL"),
        ("http:///v1", "no host"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/v1", "Port out of range"),
        ("http://exa mple/v1", "space or control character"),
    ],
)
def test_bad_base_url_is_a_config_error_before_anything_is_sent(
    url: str, reason: str, api: FakeAPI
) -> None:
    """A base URL that is not http(s)://host[:port] raises ConfigError naming it and why,
    when the client is made (both clients), so nothing is sent."""
    for cls in (Clore, AsyncClore):
        with pytest.raises(clore.ConfigError) as info:
            cls(KEY, base_url=url, clock=ManualClock())
        assert f"invalid base_url {url!r}: " in str(info.value) and reason in str(info.value)
    assert api.seen == []


def test_a_base_url_never_repeats_its_credentials() -> None:
    """user:password@ in a bad base URL is left out of the error."""
    with pytest.raises(clore.ConfigError) as info:
        Clore(KEY, base_url="ftp://me:hunter2@host/v1", clock=ManualClock())
    assert "hunter2" not in str(info.value) and "host/v1" in str(info.value)


def test_debug_log_line_per_request(
    api: FakeAPI, client: Clore, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request logs method, endpoint, status, code and elapsed time at DEBUG."""
    import logging

    with caplog.at_level(logging.DEBUG, logger="clore"):
        client.wallets()
        api.responses["renter_fees"] = {"code": 2}
        with pytest.raises(clore.InvalidInputError):
            client.renter_fees()
    lines = [r.getMessage() for r in caplog.records if r.name == "clore"]
    assert lines[0].startswith("GET wallets -> HTTP 200 code 0 in ")
    assert lines[1].startswith("GET renter_fees -> HTTP 200 code 2 (fatal) in ")


def test_raw_call_returns_plain_dicts(api: FakeAPI, client: Clore) -> None:
    """_raw gives the body as sent, for the compat wrapper."""
    body = client._raw("wallets")
    assert json.dumps(body)  # plain JSON types only
    assert body["wallets"][0]["name"] == "bitcoin"


def test_an_invalid_url_raised_by_the_http_layer_is_a_config_error(clock: ManualClock) -> None:
    """httpx.InvalidURL (not an httpx.HTTPError) from the HTTP layer becomes ConfigError,
    without retrying."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.InvalidURL("Invalid port: ':1'")

    c = Clore(KEY, base_url=BASE_URL, transport=httpx.MockTransport(refuse), clock=clock)
    with pytest.raises(clore.ConfigError, match="invalid base_url"):
        c.wallets()
    assert clock.slept == []
