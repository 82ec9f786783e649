"""Clore and AsyncClore: one method per endpoint, configuration sources, lifetime."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import clore
from _stub.wire import Wire, end, free_server, rent, spot_price
from clore import AsyncClore, Clore, config
from clore._clock import ManualClock
from clore._wire import MyServer, Order, PohBalance, RenterFees, ServerConfig, SpotMarket, Wallet
from clore.sandbox import BASE_URL, Sandbox


class World:
    """What the endpoint calls act on: an order, a spot bid, a server and a hosted rig."""

    def __init__(self, sandbox: Sandbox, wire: Wire) -> None:
        self.wire = wire
        self.sid = free_server(sandbox, spot=True)
        self.order = rent(sandbox)
        self.bid = rent(sandbox, self.sid, spot=True)
        self.bid_price = spot_price(sandbox, self.sid)
        with sandbox.client() as owner:
            self.rig = owner.my_servers()[0].name
        sandbox.advance(5)  # that listing was a request of the demo key: let its window pass

    @property
    def last(self) -> Any:
        return self.wire.seen[-1]


def _check_marketplace(w: World, result: Any) -> None:
    assert len(result) == 3500 and {type(s).__name__ for s in result} == {"Server"}
    assert w.last.method == "GET"


def _check_spot(w: World, result: Any) -> None:
    assert isinstance(result, SpotMarket) and [o.offer_id for o in result.offers] == [w.bid]
    assert w.last.params == {"market": str(w.sid)}


def _check_my_orders(w: World, result: Any) -> None:
    assert [type(o) for o in result] == [Order, Order]
    assert [o.id for o in result] == [w.order, w.bid]
    assert w.last.params == {"return_completed": "false"}


def _check_wallets(w: World, result: Any) -> None:
    assert [type(x) for x in result] == [Wallet] * 3
    assert (result[0].name, result[0].withdrawal_fee) == ("bitcoin", 5e-5) and result[0].deposit
    assert 0.09 < result[0].balance < 0.1  # 0.1 funded, the world's two orders billing


def _check_my_servers(w: World, result: Any) -> None:
    assert {type(x) for x in result} == {MyServer} and w.rig in [x.name for x in result]


def _check_server_config(w: World, result: Any) -> None:
    assert isinstance(result, ServerConfig) and result.name == w.rig
    assert (w.last.method, w.last.body) == ("GET", {"server_name": w.rig})


def _check_cancel(w: World, result: Any) -> None:
    assert result is None
    assert w.last.body == {"id": w.order, "issue": "GPU fell off the bus"}
    assert w.last.code == 0


def _check_spot_price(w: World, result: Any) -> None:
    assert w.last.body == {"order_id": w.bid, "desired_price": w.bid_price * 2}
    assert w.last.code == 0


def _check_settings(w: World, result: Any) -> None:
    assert w.last.body == {"name": w.rig, "availability": False, "mrl": 48}
    assert w.last.code == 0


def _check_fees(w: World, result: Any) -> None:
    assert isinstance(result, RenterFees)
    assert result.fee_percent("spot", "bitcoin") == 2.5


def _check_poh(w: World, result: Any) -> None:
    assert result == PohBalance(balance=0.0)


def _check_get_order(w: World, result: Any) -> None:
    assert result.id == w.order
    assert w.last.params == {"return_completed": "true"}


def _order(w: World) -> tuple[Any, ...]:
    return (w.order,)


ENDPOINT_CALLS = [
    ("marketplace", lambda w: (), {}, _check_marketplace),
    ("spot_marketplace", lambda w: (w.sid,), {}, _check_spot),
    ("my_orders", lambda w: (), {}, _check_my_orders),
    ("get_order", _order, {}, _check_get_order),
    ("cancel_order", _order, {"issue": "GPU fell off the bus"}, _check_cancel),
    ("set_spot_price", lambda w: (w.bid, w.bid_price * 2), {}, _check_spot_price),
    ("wallets", lambda w: (), {}, _check_wallets),
    ("my_servers", lambda w: (), {}, _check_my_servers),
    ("server_config", lambda w: (w.rig,), {}, _check_server_config),
    (
        "set_server_settings",
        lambda w: (w.rig,),
        {"availability": False, "mrl": 48},
        _check_settings,
    ),
    ("renter_fees", lambda w: (), {}, _check_fees),
    ("poh_balance", lambda w: (), {}, _check_poh),
]
NAMES = [name for name, *_ in ENDPOINT_CALLS]


@pytest.fixture
def world(sandbox: Sandbox, wire: Wire) -> World:
    return World(sandbox, wire)


@pytest.mark.parametrize(("name", "args", "kwargs", "check"), ENDPOINT_CALLS, ids=NAMES)
def test_every_endpoint_sync(
    name: str, args: Any, kwargs: dict[str, Any], check: Any, world: World, client: Clore
) -> None:
    """Each sync method calls its endpoint and returns the typed result."""
    check(world, getattr(client, name)(*args(world), **kwargs))
    assert world.last.endpoint == ("my_orders" if name == "get_order" else name)
    assert world.wire.rejected == 0


@pytest.mark.parametrize(("name", "args", "kwargs", "check"), ENDPOINT_CALLS, ids=NAMES)
async def test_every_endpoint_async(
    name: str, args: Any, kwargs: dict[str, Any], check: Any, world: World, aclient: AsyncClore
) -> None:
    """Each async method calls its endpoint and returns the same typed result."""
    check(world, await getattr(aclient, name)(*args(world), **kwargs))


def test_create_order_body_uses_the_api_field_names(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """create_order sends renting_server/type/spotprice and the normalised options."""
    sid = free_server(sandbox, spot=True)
    price = spot_price(sandbox, sid)
    order = client.create_order(
        sid,
        "cloreai/jupyter",
        order_type="spot",
        currency="btc",
        spotprice=price,
        ports={22: "tcp", "8888": "http"},
        ssh_password="Secret123",
        jupyter_token="tok",
        env={"A": "1"},
        command="echo hi",
        required_price=price,
        autossh_entrypoint=True,
    )
    assert order.spot and order.si == sid
    assert wire.sent("create_order")[0].body == {
        "currency": "bitcoin",
        "image": "cloreai/jupyter",
        "renting_server": sid,
        "type": "spot",
        "spotprice": price,
        "ports": {"22": "tcp", "8888": "http"},
        "env": {"A": "1"},
        "ssh_password": "Secret123",
        "jupyter_token": "tok",
        "command": "echo hi",
        "required_price": price,
        "autossh_entrypoint": True,
    }


def test_set_server_settings_per_currency_body(world: World, client: Clore) -> None:
    """The per-currency settings form is sent with the API's flat keys, and accepted."""
    client.set_server_settings(
        world.rig, per_currency={"clore": {"on_demand": 20, "enabled": True}}
    )
    assert world.last.body == {
        "name": world.rig,
        "CLORE-Blockchain_on_demand": 20.0,
        "enabled-CLORE-Blockchain": True,
    }
    assert world.last.code == 0


def test_spot_marketplace_of_unknown_server_raises(client: Clore) -> None:
    """`exists: false` raises ServerNotFoundError."""
    with pytest.raises(clore.ServerNotFoundError) as info:
        client.spot_marketplace(999_999_999)
    assert info.value.server_id == 999_999_999


def test_get_order_of_unknown_id_raises(client: Clore) -> None:
    """An id absent from my_orders raises OrderNotFoundError."""
    with pytest.raises(clore.OrderNotFoundError):
        client.get_order(4242)


def test_my_orders_can_include_completed(sandbox: Sandbox, client: Clore) -> None:
    """include_completed=True asks for completed orders and returns them."""
    end(sandbox, rent(sandbox))
    assert client.my_orders() == []
    assert [o.expired for o in client.my_orders(include_completed=True)] == [True]


# --------------------------------------------------------------------------- keys and config


def test_key_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, wire: Wire
) -> None:
    """Without an argument the key is CLORE_API_KEY and the URL CLORE_BASE_URL."""
    monkeypatch.setenv("CLORE_API_KEY", sandbox.demo_key)
    monkeypatch.setenv("CLORE_BASE_URL", "https://env.test/v1/")
    c = Clore(transport=wire.transport(), clock=ManualClock())
    c.wallets()
    assert (c.base_url, wire.seen[-1].headers["auth"]) == ("https://env.test/v1", sandbox.demo_key)


def test_key_comes_from_the_active_profile(sandbox: Sandbox, wire: Wire) -> None:
    """Without argument or environment, the active profile's key and URL are used."""
    config.set_profile("work", api_key=sandbox.demo_key, base_url="https://profile.test/v1")
    c = Clore(transport=wire.transport(), clock=ManualClock())
    c.wallets()
    assert c.base_url == "https://profile.test/v1" and c.profile == "work"
    assert wire.seen[-1].headers["auth"] == sandbox.demo_key


def test_argument_beats_environment(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, wire: Wire
) -> None:
    """An explicit api_key wins over CLORE_API_KEY."""
    monkeypatch.setenv("CLORE_API_KEY", "from-env-xxxxxxxxxxxx")
    c = Clore(sandbox.demo_key, base_url=BASE_URL, transport=wire.transport(), clock=ManualClock())
    c.wallets()
    assert wire.seen[-1].headers["auth"] == sandbox.demo_key and wire.seen[-1].code == 0


def test_default_base_url_is_the_public_api(wire: Wire) -> None:
    """With nothing configured the client points at https://api.clore.ai/v1."""
    assert Clore(transport=wire.transport()).base_url == "https://api.clore.ai/v1"


def test_missing_key_fails_locally_for_private_endpoints(wire: Wire, clock: ManualClock) -> None:
    """Without any key, private endpoints raise AuthenticationError and send nothing."""
    c = Clore(base_url=BASE_URL, transport=wire.transport(), clock=clock)
    assert not c.has_api_key
    with pytest.raises(clore.AuthenticationError, match="no API key configured"):
        c.wallets()
    assert wire.seen == []


def test_marketplace_works_without_a_key(wire: Wire, clock: ManualClock) -> None:
    """The public marketplace is fetched without an auth header when no key is set."""
    c = Clore(base_url=BASE_URL, transport=wire.transport(), clock=clock)
    assert len(c.marketplace()) == 3500
    assert "auth" not in wire.seen[-1].headers


def test_user_agent_is_descriptive(wire: Wire, client: Clore) -> None:
    """Every request carries the clore-python User-Agent."""
    client.wallets()
    assert wire.seen[-1].headers["user-agent"].startswith(f"clore-python/{clore.__version__} (")


@pytest.mark.parametrize(
    ("kwargs", "param"), [({"max_retries": -1}, "max_retries"), ({"timeout": 0}, "timeout")]
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], param: str) -> None:
    """Negative retries and non-positive timeouts are refused."""
    with pytest.raises(clore.ParameterError) as info:
        Clore("k" * 32, **kwargs)
    assert info.value.param == param


# --------------------------------------------------------------------------- HTTP layer


def test_injected_http_client_is_used_and_left_open(sandbox: Sandbox, wire: Wire) -> None:
    """An injected httpx.Client is used for requests and not closed by close()."""
    http = httpx.Client(transport=wire.transport())
    with Clore(sandbox.demo_key, base_url=BASE_URL, http_client=http, clock=ManualClock()) as c:
        c.wallets()
    assert not http.is_closed and len(wire.seen) == 1
    http.close()


def test_context_manager_closes_its_own_client(sandbox: Sandbox, wire: Wire) -> None:
    """Leaving the with-block closes the httpx client the Clore made."""
    with Clore(sandbox.demo_key, base_url=BASE_URL, transport=wire.transport()) as c:
        pass
    assert c._http.is_closed


async def test_async_context_manager_closes_its_own_client(sandbox: Sandbox, wire: Wire) -> None:
    """Leaving the async with-block closes the AsyncClient the AsyncClore made."""
    async with AsyncClore(
        sandbox.demo_key, base_url=BASE_URL, transport=wire.async_transport()
    ) as c:
        pass
    assert c._http.is_closed


def test_client_and_transport_together_are_refused() -> None:
    """Passing both http_client and transport is a ValueError."""
    with pytest.raises(ValueError, match="not both"):
        Clore("k" * 32, http_client=httpx.Client(), transport=httpx.MockTransport(lambda r: None))  # type: ignore[arg-type,return-value]


async def test_async_calls_are_paced(wire: Wire, aclient: AsyncClore, clock: ManualClock) -> None:
    """Three async reads are spaced 1.01 s apart with no 429."""
    for _ in range(3):
        await aclient.wallets()
    assert clock.slept == pytest.approx([1.01, 1.01])
    assert wire.rejected == 0 and len(wire.seen) == 3


async def test_concurrent_async_tasks_share_pacing(wire: Wire, aclient: AsyncClore) -> None:
    """Tasks of one AsyncClore running at once never trip the rate limit."""
    import asyncio

    await asyncio.gather(*(aclient.wallets() for _ in range(5)))
    assert wire.rejected == 0 and len(wire.seen) == 5


def test_connection_errors_become_clore_errors(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """A refused connection surfaces as APIConnectionError after the retries."""
    wire.network.unreachable("wallets", *["connect"] * 4)
    c = Clore(sandbox.demo_key, base_url=BASE_URL, transport=wire.transport(), clock=clock)
    with pytest.raises(clore.APIConnectionError, match="wallets: ConnectError"):
        c.wallets()
    assert wire.network.refused == 4 and wire.seen == []


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
def test_bad_base_url_is_a_config_error_before_anything_is_sent(url: str, reason: str) -> None:
    """A base URL that is not http(s)://host[:port] raises ConfigError naming it and why,
    when the client is made (both clients), so nothing is sent."""
    for cls in (Clore, AsyncClore):
        with pytest.raises(clore.ConfigError) as info:
            cls("k" * 32, base_url=url, clock=ManualClock())
        assert f"invalid base_url {url!r}: " in str(info.value) and reason in str(info.value)


def test_a_base_url_never_repeats_its_credentials() -> None:
    """user:password@ in a bad base URL is left out of the error."""
    with pytest.raises(clore.ConfigError) as info:
        Clore("k" * 32, base_url="ftp://me:hunter2@host/v1", clock=ManualClock())
    assert "hunter2" not in str(info.value) and "host/v1" in str(info.value)


def test_debug_log_line_per_request(client: Clore, caplog: pytest.LogCaptureFixture) -> None:
    """Each request logs method, endpoint, status, code and elapsed time at DEBUG."""
    import logging

    with caplog.at_level(logging.DEBUG, logger="clore"):
        client.wallets()
        with pytest.raises(clore.InvalidInputError):
            client.server_config("no-such-rig")
    lines = [r.getMessage() for r in caplog.records if r.name == "clore"]
    assert lines[0].startswith("GET wallets -> HTTP 200 code 0 in ")
    assert lines[1].startswith("GET server_config -> HTTP 200 code 2 (fatal) in ")


def test_raw_call_returns_plain_dicts(client: Clore) -> None:
    """_raw gives the body as sent, for the compat wrapper."""
    body = client._raw("wallets")
    assert json.dumps(body)  # plain JSON types only
    assert body["wallets"][0]["name"] == "bitcoin"


def test_an_invalid_url_raised_by_the_http_layer_is_a_config_error(clock: ManualClock) -> None:
    """httpx.InvalidURL (not an httpx.HTTPError) from the HTTP layer becomes ConfigError,
    without retrying."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.InvalidURL("Invalid port: ':1'")

    c = Clore("k" * 32, base_url=BASE_URL, transport=httpx.MockTransport(refuse), clock=clock)
    with pytest.raises(clore.ConfigError, match="invalid base_url"):
        c.wallets()
    assert clock.slept == []
