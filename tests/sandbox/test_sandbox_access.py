"""The control plane's secrets: loopback peers only without a token, the token with one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from clore import AuthenticationError, ConfigError
from clore.sandbox import Sandbox, control_client

TOKEN = "s3cr3t-control-token-7f0c2a9d"
ELSEWHERE = ["192.0.2.10", "10.1.2.3", "2001:db8::1", "::ffff:192.0.2.10", "testclient"]
LOOPBACK = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]
CONTROL_CALLS = [
    ("GET", "/_sandbox/info", None),
    ("GET", "/_sandbox/openapi.json", None),
    ("POST", "/_sandbox/users", {"name": "intruder", "balances": {"bitcoin": 9}}),
    ("POST", "/_sandbox/faults", {"endpoint": "wallets", "fault": "db_error"}),
    ("POST", "/_sandbox/reset", None),
    ("POST", "/_sandbox/advance", {"seconds": 60}),
    ("POST", "/_sandbox/servers/1", {"online": False}),
    ("POST", "/_sandbox/market/tick", {"count": 1}),
    ("GET", "/_sandbox/faults", None),
    ("DELETE", "/_sandbox/faults", None),
    ("GET", "/_sandbox", None),
]


def _state(sb: Sandbox) -> tuple[object, ...]:
    """What a control call could change: time, faults, the market."""
    with httpx.Client(transport=sb.transport(), base_url="http://sandbox.local/v1") as client:
        market = client.get("/marketplace").json()
    return (sb.now(), sb.faults(), market)


@pytest.fixture
def guarded(sandbox_factory: Callable[..., Sandbox], small_seed: Path) -> Sandbox:
    """A small-market sandbox whose control plane needs ``TOKEN``."""
    return sandbox_factory(seed=str(small_seed), rate_limit=False, control_token=TOKEN)


@pytest.mark.parametrize("peer", ELSEWHERE)
@pytest.mark.parametrize(("method", "path", "body"), CONTROL_CALLS)
def test_a_peer_off_loopback_is_refused_the_control_plane_without_a_token(
    small: Sandbox,
    asgi_client: Callable[..., httpx.Client],
    peer: str,
    method: str,
    path: str,
    body: object,
) -> None:
    """Without a token, every control request from a non-loopback peer is 403 code 3."""
    before = _state(small)
    response = asgi_client(small, peer).request(method, path, json=body)
    assert (
        response.status_code,
        response.json(),
    ) == (403, {"code": 3, "error": "control_plane_loopback_only"})
    assert small.demo_key not in response.text
    assert before == _state(small)


@pytest.mark.parametrize("peer", LOOPBACK)
def test_loopback_peers_are_served_without_a_token(
    small: Sandbox, asgi_client: Callable[..., httpx.Client], peer: str
) -> None:
    """Without a token, a loopback peer gets the control plane (the demo key included)."""
    info = asgi_client(small, peer).get("/_sandbox/info").json()
    assert (0, small.demo_key) == (info["code"], info["demo_key"])


@pytest.mark.parametrize("peer", ELSEWHERE)
def test_the_api_stays_open_to_every_peer(
    small: Sandbox, asgi_client: Callable[..., httpx.Client], peer: str
) -> None:
    """The v1 API is not the control plane: a non-loopback peer with a key is served."""
    response = asgi_client(small, peer).get("/v1/wallets", headers={"auth": small.demo_key})
    assert (response.status_code, response.json()["code"]) == (200, 0)


@pytest.mark.parametrize("peer", LOOPBACK + ELSEWHERE)
@pytest.mark.parametrize("presented", [None, "", "wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper()])
def test_with_a_token_every_control_request_must_carry_it(
    guarded: Sandbox, asgi_client: Callable[..., httpx.Client], peer: str, presented: str | None
) -> None:
    """With a token set, a missing or wrong x-sandbox-token is 401 code 3, loopback or not."""
    headers = {} if presented is None else {"x-sandbox-token": presented}
    response = asgi_client(guarded, peer).get("/_sandbox/info", headers=headers)
    assert (
        response.status_code,
        response.json(),
    ) == (401, {"code": 3, "error": "control_token_required"})
    assert guarded.demo_key not in response.text


@pytest.mark.parametrize("peer", LOOPBACK + ELSEWHERE)
def test_the_right_token_opens_the_control_plane_to_any_peer(
    guarded: Sandbox, asgi_client: Callable[..., httpx.Client], peer: str
) -> None:
    """With the token in x-sandbox-token, any peer may drive the control plane."""
    client = asgi_client(guarded, peer)
    client.headers["x-sandbox-token"] = TOKEN
    made = client.post("/_sandbox/users", json={"name": "ci", "balances": {"bitcoin": 1}}).json()
    info = client.get("/_sandbox/info").json()
    assert (0, 0, guarded.demo_key) == (made["code"], info["code"], info["demo_key"])


def test_the_in_process_transport_counts_as_loopback(small: Sandbox, guarded: Sandbox) -> None:
    """Sandbox.transport() is served like a loopback peer: no token needed unless one is set."""
    with httpx.Client(transport=small.transport(), base_url="http://sandbox.local") as client:
        assert small.demo_key == client.get("/_sandbox/info").json()["demo_key"]
    with httpx.Client(transport=guarded.transport(), base_url="http://sandbox.local") as client:
        assert client.get("/_sandbox/info").status_code == 401
        answer = client.get("/_sandbox/info", headers={"x-sandbox-token": TOKEN}).json()
        assert guarded.demo_key == answer["demo_key"]


def test_the_control_client_sends_the_token_from_the_environment(
    guarded: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """control_client reads CLORE_SANDBOX_TOKEN; without it the refusal names no secret."""
    base = "http://sandbox.local/v1"
    monkeypatch.delenv("CLORE_SANDBOX_TOKEN", raising=False)
    with (
        control_client(base, transport=guarded.transport()) as remote,
        pytest.raises(AuthenticationError) as refused,
    ):
        remote.info()
    assert "control_token_required" in str(refused.value)
    monkeypatch.setenv("CLORE_SANDBOX_TOKEN", f"  {TOKEN}\n")
    with control_client(base, transport=guarded.transport()) as remote:
        assert guarded.demo_key == remote.info()["demo_key"]
    with control_client(base, transport=guarded.transport(), token=TOKEN) as remote:
        assert remote.faults() == []


@pytest.mark.parametrize("bad", [f"{TOKEN}\r\nx-evil: 1", f"{TOKEN} tail", f"{TOKEN}\u00e9"])
def test_the_control_client_refuses_an_unsendable_token_without_echoing_it(
    sandbox: Sandbox, bad: str
) -> None:
    """A token with inner spaces, control or non-ASCII characters is a ConfigError, unechoed."""
    with pytest.raises(ConfigError) as refused:
        control_client("http://sandbox.local/v1", transport=sandbox.transport(), token=bad)
    assert TOKEN not in str(refused.value) and TOKEN not in repr(refused.value)


@pytest.mark.parametrize(
    "bad", ["short", "x" * 257, "with space inside-0123456789", "tab\there-0123456789"]
)
def test_a_sandbox_refuses_a_weak_or_unsendable_token_without_echoing_it(
    bad: str, small_seed: Path
) -> None:
    """Sandbox(control_token=) wants 16 to 256 visible ASCII characters, and never echoes it."""
    with pytest.raises(ValueError) as refused:
        Sandbox(seed=str(small_seed), control_token=bad)
    assert bad not in str(refused.value)
