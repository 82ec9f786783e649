"""The API key never appears in a URL, a log line, a repr, an exception or a file name."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import httpx
import pytest

import clore
from _stub.fake_api import BASE_URL, KEY, FakeAPI
from clore import Clore, CloreClient, config
from clore._clock import ManualClock
from clore._core import ENDPOINTS, build_request


def _everything_a_client_can_do(client: Clore, api: FakeAPI) -> list[BaseException]:
    """Exercise success and failure paths; return the exceptions raised on the way."""
    errors: list[BaseException] = []
    api.servers = [{"id": 1}]
    client.marketplace()
    client.create_order(1, "img")
    client.wallets()
    faults = ["429", "500", "code1", "401", "not_json", "read_timeout", "connect"]
    api.inject("wallets", *faults)
    api.responses["renter_fees"] = {"code": 6, "error": "weird"}
    for call in (
        client.wallets,
        client.wallets,
        client.renter_fees,
        lambda: client.spot_marketplace(55),
        lambda: client.get_order(9999),
        lambda: client.create_order(1, "img"),
        lambda: client.set_spot_price(1, -1),
    ):
        try:
            call()
        except Exception as exc:  # collected for inspection
            errors.append(exc)
    return errors


def test_key_is_absent_from_urls_logs_reprs_and_errors(
    api: FakeAPI, client: Clore, caplog: pytest.LogCaptureFixture
) -> None:
    """Across success, retries and every failure kind, the key shows up only in `auth`."""
    with caplog.at_level(logging.DEBUG):
        errors = _everything_a_client_can_do(client, api)
    assert len(errors) >= 5
    for seen in api.seen:
        assert seen.headers.get("auth") in (KEY, None)
        assert KEY not in str(seen.params) and KEY not in seen.endpoint
    for record in caplog.records:
        assert KEY not in record.getMessage()
    for error in errors:
        text = "".join(traceback.format_exception(error))
        assert KEY not in text, type(error).__name__
        assert KEY not in repr(error)
    assert KEY not in repr(client) and KEY not in str(client)


def test_request_objects_do_not_show_the_key() -> None:
    """The core's Request repr leaves the headers out."""
    request = build_request(ENDPOINTS["wallets"], BASE_URL, KEY, "ua")
    assert KEY not in repr(request) and KEY not in str(request)
    assert KEY not in request.url


def test_a_clients_internal_state_does_not_show_the_key(api: FakeAPI) -> None:
    """The flow context (printed by tracebacks that show locals) leaves the key out."""
    c = Clore(KEY, base_url=BASE_URL, transport=api.transport(), clock=ManualClock())
    assert KEY not in repr(c._ctx) and KEY not in repr(vars(c))


def test_pacing_state_never_stores_the_key(api: FakeAPI) -> None:
    """The shared pacing file is named by a hash and holds no key."""
    c = Clore(KEY, base_url=BASE_URL, transport=api.transport(), pacing=clore.Pacing(shared=True))
    c.wallets()
    path: Path = c._ctx.pacer.store.path  # type: ignore[attr-defined]
    assert KEY not in path.name and KEY not in path.read_text()


def test_compat_client_and_config_objects_mask_the_key(api: FakeAPI) -> None:
    """CloreClient, Profile and Resolved reprs do not contain the key."""
    guide = CloreClient(KEY, base_url=BASE_URL, transport=api.transport(), clock=ManualClock())
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
