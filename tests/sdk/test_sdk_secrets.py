"""The API key never appears in a URL, a log line, a repr, an exception or a file name."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import httpx
import pytest

import clore
from _stub.wire import Wire, free_server, rented_server
from clore import Clore, CloreClient, config
from clore._clock import ManualClock
from clore._core import ENDPOINTS, build_request
from clore.sandbox import BASE_URL, Sandbox

KEY = "test-key-0123456789abcdef"


def _everything_a_client_can_do(client: Clore, sandbox: Sandbox, wire: Wire) -> list[BaseException]:
    """Exercise success and failure paths; return the exceptions raised on the way."""
    errors: list[BaseException] = []
    client.marketplace()
    client.create_order(free_server(sandbox), "img")
    client.wallets()
    for fault in ("rate_limit", "http_500", "db_error", "garbled", "timeout"):
        sandbox.inject_fault("wallets", fault)
    wire.network.unreachable("wallets", "connect")
    stranger = Clore("f" * 24, base_url=BASE_URL, transport=wire.transport(), clock=client.clock)
    for call in (
        client.wallets,
        client.wallets,
        client.wallets,
        stranger.wallets,
        lambda: client.server_config("no-such-rig"),
        lambda: client.spot_marketplace(999_999_999),
        lambda: client.get_order(9999),
        lambda: client.create_order(rented_server(sandbox), "img"),
        lambda: client.set_spot_price(1, -1),
    ):
        try:
            call()
        except Exception as exc:  # collected for inspection
            errors.append(exc)
    return errors


def test_key_is_absent_from_urls_logs_reprs_and_errors(
    sandbox: Sandbox, wire: Wire, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Across success, retries and every failure kind, the key shows up only in `auth`."""
    client = Clore(KEY, base_url=BASE_URL, transport=wire.transport(), clock=clock)
    sandbox.backend.create_user("keyed", {"bitcoin": 1.0})
    _set_key(sandbox, "keyed", KEY)
    with caplog.at_level(logging.DEBUG):
        errors = _everything_a_client_can_do(client, sandbox, wire)
    assert len(errors) >= 5
    assert {type(e).__name__ for e in errors} >= {
        "UnexpectedResponseError", "AuthenticationError", "InvalidInputError",
        "ServerNotFoundError", "OrderNotFoundError", "ServerAlreadyRentedError", "ParameterError",
    }  # fmt: skip
    assert wire.sent("create_order")[0].code == 0 and wire.network.refused == 1
    for seen in wire.seen:
        assert seen.headers.get("auth") in (KEY, "f" * 24, None)
        assert KEY not in str(seen.params) and KEY not in seen.endpoint
    for record in caplog.records:
        assert KEY not in record.getMessage()
    for error in errors:
        text = "".join(traceback.format_exception(error))
        assert KEY not in text, type(error).__name__
        assert KEY not in repr(error)
    assert KEY not in repr(client) and KEY not in str(client)


def _set_key(sandbox: Sandbox, name: str, key: str) -> None:
    """Give the user ``name`` the API key ``key`` (a known one, to look for it in output)."""
    with sandbox.store.write() as repo:
        found = next(u for u in repo.users_of_kind("user") if u.name == name)
        found.api_key = key
        repo.update_user(found)


def test_request_objects_do_not_show_the_key() -> None:
    """The core's Request repr leaves the headers out."""
    request = build_request(ENDPOINTS["wallets"], BASE_URL, KEY, "ua")
    assert KEY not in repr(request) and KEY not in str(request)
    assert KEY not in request.url


def test_a_clients_internal_state_does_not_show_the_key(wire: Wire) -> None:
    """The flow context (printed by tracebacks that show locals) leaves the key out."""
    c = Clore(KEY, base_url=BASE_URL, transport=wire.transport(), clock=ManualClock())
    assert KEY not in repr(c._ctx) and KEY not in repr(vars(c))


def test_pacing_state_never_stores_the_key(sandbox: Sandbox, wire: Wire) -> None:
    """The shared pacing file is named by a hash and holds no key."""
    key = sandbox.demo_key
    c = Clore(key, base_url=BASE_URL, transport=wire.transport(), pacing=clore.Pacing(shared=True))
    c.wallets()
    assert wire.seen[-1].code == 0
    path: Path = c._ctx.pacer.store.path  # type: ignore[attr-defined]
    assert key not in path.name and key not in path.read_text()


def test_compat_client_and_config_objects_mask_the_key(wire: Wire) -> None:
    """CloreClient, Profile and Resolved reprs do not contain the key."""
    guide = CloreClient(KEY, base_url=BASE_URL, transport=wire.transport(), clock=ManualClock())
    assert KEY not in repr(guide)
    config.set_profile("default", api_key=KEY)
    assert KEY not in repr(config.load())
    assert KEY not in repr(config.resolve())


def test_transport_errors_do_not_echo_headers(clock: ManualClock) -> None:
    """A transport error's message names the endpoint and the cause, never request headers."""

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer", request=request)

    c = Clore(KEY, base_url=BASE_URL, transport=httpx.MockTransport(boom), clock=clock)
    with pytest.raises(clore.APIConnectionError) as info:
        c.wallets()
    assert str(info.value) == "wallets: ReadError: connection reset by peer"
