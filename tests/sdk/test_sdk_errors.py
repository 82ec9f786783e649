"""API codes and code-6 strings become specific exceptions with readable messages."""

from __future__ import annotations

import json

import pytest

import clore
from _stub.wire import Wire, rent, rented_server
from clore import Clore
from clore._clock import ManualClock
from clore._core import ENDPOINTS, decode_response
from clore._errors import CODE_MEANINGS, error_from_response
from clore.sandbox import BASE_URL, Sandbox

CODES = [
    (1, clore.DatabaseError),
    (2, clore.InvalidInputError),
    (3, clore.AuthenticationError),
    (4, clore.InvalidEndpointError),
    (5, clore.RateLimitError),
    (6, clore.ApplicationError),
]

CODE6 = [
    ("exceeded_max_step", clore.ExceededMaxStepError),
    ("can_lower_every_600_seconds", clore.SpotPriceLoweringTooSoonError),
    ("server-already-rented", clore.ServerAlreadyRentedError),
    ("not_enough_balance", clore.NotEnoughBalanceError),
    ("too_low_price", clore.TooLowPriceError),
    ("server-offline", clore.ServerOfflineError),
    ("currency-not-allowed", clore.CurrencyNotAllowedError),
    ("price-changed", clore.PriceChangedError),
]


def _decode(body: object, status: int = 200, headers: dict[str, str] | None = None) -> object:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_response(ENDPOINTS["wallets"], status, headers or {}, content)


@pytest.mark.parametrize(("code", "cls"), CODES)
def test_every_code_maps_to_its_class(code: int, cls: type[clore.APIError]) -> None:
    """Each non-zero API code raises its own APIError subclass carrying the code."""
    with pytest.raises(cls) as info:
        _decode({"code": code})
    assert info.value.code == code
    assert type(info.value) is cls


@pytest.mark.parametrize(("code", "cls"), CODES)
def test_message_names_code_meaning_and_endpoint(code: int, cls: type[clore.APIError]) -> None:
    """The message says which endpoint, which code and what the code means."""
    with pytest.raises(cls) as info:
        _decode({"code": code})
    assert str(info.value) == f"wallets: code {code} ({CODE_MEANINGS[code]})"


@pytest.mark.parametrize(("error", "cls"), CODE6)
def test_every_known_code6_string_maps_to_its_class(
    error: str, cls: type[clore.ApplicationError]
) -> None:
    """Each known code-6 `error` string raises its own ApplicationError subclass."""
    with pytest.raises(cls) as info:
        _decode({"code": 6, "error": error})
    assert (info.value.code, info.value.error) == (6, error)
    assert error in str(info.value) and "application error" in str(info.value)


def test_unknown_code6_string_is_kept_verbatim() -> None:
    """An unknown code-6 string raises ApplicationError with the string unchanged."""
    with pytest.raises(clore.ApplicationError) as info:
        _decode({"code": 6, "error": "Some-New Error"})
    assert type(info.value) is clore.ApplicationError
    assert info.value.error == "Some-New Error"


def test_exceeded_max_step_carries_the_step() -> None:
    """exceeded_max_step exposes the API's `max_step` per day."""
    with pytest.raises(clore.ExceededMaxStepError) as info:
        _decode({"code": 6, "error": "exceeded_max_step", "max_step": "0.000001"})
    assert info.value.max_step == 0.000001


def test_lowering_too_soon_carries_the_seconds_left() -> None:
    """can_lower_every_600_seconds exposes `time_to_lowering` and says it in the message."""
    with pytest.raises(clore.SpotPriceLoweringTooSoonError) as info:
        _decode({"code": 6, "error": "can_lower_every_600_seconds", "time_to_lowering": 412})
    assert info.value.time_to_lowering == 412
    assert "(412 s left)" in str(info.value)
    assert info.value.local is False


@pytest.mark.parametrize(("raw", "expected"), [("412", 412.0), ("soon", None), ([1], None)])
def test_odd_code6_fields_never_break_the_error(raw: object, expected: float | None) -> None:
    """Unreadable `time_to_lowering`/`max_step` values read as None instead of raising."""
    body = {"code": 6, "error": "can_lower_every_600_seconds", "time_to_lowering": raw}
    with pytest.raises(clore.SpotPriceLoweringTooSoonError) as lowering:
        _decode(body)
    assert lowering.value.time_to_lowering == expected
    with pytest.raises(clore.ExceededMaxStepError) as step:
        _decode({"code": 6, "error": "exceeded_max_step", "max_step": raw})
    assert step.value.max_step == expected


def test_http_401_is_an_authentication_error_even_without_a_body() -> None:
    """HTTP 401 raises AuthenticationError (code 3) whatever the body."""
    for body in ({"code": 3}, b"Unauthorized", {}):
        with pytest.raises(clore.AuthenticationError) as info:
            _decode(body, status=401)
        assert (info.value.code, info.value.status_code) == (3, 401)


def test_http_429_is_a_rate_limit_error_with_retry_after() -> None:
    """HTTP 429 raises RateLimitError with the server's Retry-After in seconds."""
    with pytest.raises(clore.RateLimitError) as info:
        _decode({"code": 5}, status=429, headers={"retry-after": "3"})
    assert (info.value.code, info.value.retry_after) == (5, 3.0)
    with pytest.raises(clore.RateLimitError):
        _decode(b"Too Many Requests", status=429)


def test_http_5xx_without_a_code_is_an_unexpected_response() -> None:
    """A 5xx without an API code raises UnexpectedResponseError with the status."""
    with pytest.raises(clore.UnexpectedResponseError) as info:
        _decode(b"<html>Bad Gateway</html>", status=502)
    assert info.value.status_code == 502
    assert "HTTP 502" in str(info.value)


def test_5xx_carrying_an_api_code_raises_that_code() -> None:
    """A 5xx whose body has a non-zero code raises the code's class."""
    with pytest.raises(clore.DatabaseError) as info:
        _decode({"code": 1}, status=500)
    assert info.value.status_code == 500


def test_non_json_body_is_an_unexpected_response() -> None:
    """A 200 with an HTML body (a proxy page) raises UnexpectedResponseError."""
    with pytest.raises(clore.UnexpectedResponseError, match="not JSON"):
        _decode(b"<html>Cloudflare</html>")


def test_wrong_shape_is_an_unexpected_response() -> None:
    """A JSON body that does not fit the endpoint's schema raises UnexpectedResponseError."""
    with pytest.raises(clore.UnexpectedResponseError, match="unexpected shape"):
        _decode({"code": 0, "wallets": "nope"})
    with pytest.raises(clore.UnexpectedResponseError, match="not a JSON object"):
        _decode([1, 2])


def test_error_from_response_falls_back_to_api_error_for_unknown_codes() -> None:
    """An unknown code raises the plain APIError with that code."""
    error = error_from_response({"code": 42})
    assert type(error) is clore.APIError and error.code == 42
    assert str(error) == "code 42 (API error)"


def test_client_raises_the_mapped_error_and_keeps_the_body(
    sandbox: Sandbox, wire: Wire, client: Clore
) -> None:
    """Through the client, a code-6 answer raises its class with the body attached."""
    with pytest.raises(clore.ServerAlreadyRentedError) as info:
        client.create_order(rented_server(sandbox), "img")
    assert info.value.body == {"code": 6, "error": "server-already-rented"}
    assert info.value.endpoint == "create_order" and info.value.status_code == 200
    assert json.loads(wire.sent("create_order")[0].answer) == info.value.body


def test_error_messages_never_contain_the_key(
    sandbox: Sandbox, wire: Wire, client: Clore, clock: ManualClock
) -> None:
    """No error message from any code path includes the API key."""
    key = sandbox.demo_key
    order = rent(sandbox)
    stranger = "f" * 32
    other = Clore(stranger, base_url=BASE_URL, transport=wire.transport(), clock=clock)

    def refused(fault: str, count: int) -> None:
        sandbox.inject_fault("cancel_order", fault, count=count)
        client.cancel_order(order)

    failing = [
        lambda: refused("db_error", 1),  # 1
        lambda: client._raw("cancel_order", body={"id": "x"}),  # 2
        lambda: other.cancel_order(order),  # 3
        lambda: refused("rate_limit", 4),  # 5
        lambda: client.create_order(rented_server(sandbox), "img"),  # 6
    ]
    codes = []
    for call in failing:
        with pytest.raises(clore.APIError) as info:
            call()
        codes.append(info.value.code)
        for text in (str(info.value), repr(info.value)):
            assert key not in text and stranger not in text
    assert codes == [1, 2, 3, 5, 6]
