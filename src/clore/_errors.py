"""The exception tree of the SDK. Every error the library raises is a ``CloreError``::

    CloreError
    ├── APIError                          the API answered with a non-zero ``code``
    │   ├── DatabaseError                 code 1  (retry later)
    │   ├── InvalidInputError             code 2
    │   ├── AuthenticationError           code 3, or HTTP 401
    │   ├── InvalidEndpointError          code 4
    │   ├── RateLimitError                code 5, or HTTP 429
    │   └── ApplicationError              code 6; ``error`` says what
    │       ├── ExceededMaxStepError            exceeded_max_step (``max_step``)
    │       ├── SpotPriceLoweringTooSoonError   can_lower_every_600_seconds (``time_to_lowering``)
    │       ├── ServerAlreadyRentedError        server-already-rented
    │       ├── NotEnoughBalanceError           not_enough_balance
    │       ├── TooLowPriceError                too_low_price
    │       ├── ServerOfflineError              server-offline
    │       ├── CurrencyNotAllowedError         currency-not-allowed
    │       └── PriceChangedError               price-changed
    ├── UnexpectedResponseError           HTTP 5xx without a code, non-JSON body, bad shape
    ├── TransportError                    no answer at all
    │   ├── APIConnectionError            connection refused, reset or dropped
    │   └── APITimeoutError               no answer within the timeout
    ├── ParameterError (also ValueError)  bad arguments; nothing was sent
    ├── OrderError
    │   ├── OrderNotFoundError            the order is not (or no longer) in my_orders
    │   ├── OrderExpiredError             the order ended while waiting for it
    │   └── OrderUnconfirmedError         create_order's outcome could not be established
    ├── ServerNotFoundError               spot_marketplace answered ``exists: false``
    ├── WaitTimeoutError                  ``wait_for_order`` ran out of time
    └── ConfigError                       unreadable or invalid configuration

The codes, their meanings and the code-6 strings are ``clore._facts``'s; the tables here
map them to classes. Unknown code-6 strings raise ``ApplicationError`` with ``error`` kept
verbatim. Messages
name the code, its meaning and the ``error`` text; they never contain the API key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from clore import _facts
from clore._facts import CODE_MEANINGS

__all__ = [
    "CODE_MEANINGS",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "ApplicationError",
    "AuthenticationError",
    "CloreError",
    "ConfigError",
    "CurrencyNotAllowedError",
    "DatabaseError",
    "ExceededMaxStepError",
    "InvalidEndpointError",
    "InvalidInputError",
    "NotEnoughBalanceError",
    "OrderError",
    "OrderExpiredError",
    "OrderNotFoundError",
    "OrderUnconfirmedError",
    "ParameterError",
    "PriceChangedError",
    "RateLimitError",
    "ServerAlreadyRentedError",
    "ServerNotFoundError",
    "ServerOfflineError",
    "SpotPriceLoweringTooSoonError",
    "TooLowPriceError",
    "TransportError",
    "UnexpectedResponseError",
    "WaitTimeoutError",
    "error_from_response",
]


def _number(value: object) -> float | None:
    """A body field read as a number (numeric strings too); None when absent or unreadable."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class CloreError(Exception):
    """Base class of every error raised by the clore library."""


class APIError(CloreError):
    """The API answered with a non-zero ``code``.

    ``code`` is the API code, ``error`` the code-6 string (None otherwise), ``body`` the
    decoded response object and ``status_code`` the HTTP status.
    """

    code: int = -1
    meaning: ClassVar[str] = "API error"

    def __init__(
        self,
        code: int | None = None,
        error: str | None = None,
        *,
        body: Mapping[str, Any] | None = None,
        status_code: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.error = error
        self.body: dict[str, Any] = dict(body or {})
        self.status_code = status_code
        self.endpoint = endpoint
        super().__init__(self._message())

    @staticmethod
    def from_response(
        body: Mapping[str, Any], *, status_code: int | None = None, endpoint: str | None = None
    ) -> APIError:
        """The error an answer ``body`` stands for, of the class its ``code`` (and code-6
        ``error``) names; HTTP 401 is always ``AuthenticationError``, 429 ``RateLimitError``."""
        return error_from_response(body, status_code=status_code, endpoint=endpoint)

    def _message(self) -> str:
        meaning = CODE_MEANINGS.get(self.code, self.meaning)
        text = f"code {self.code} ({meaning})"
        if self.error:
            text += f": {self.error}"
        if self.endpoint:
            text = f"{self.endpoint}: {text}"
        return text


class DatabaseError(APIError):
    """Code 1: the API's database failed; reads are retried."""

    code = _facts.DB_ERROR
    meaning = CODE_MEANINGS[_facts.DB_ERROR]


class InvalidInputError(APIError):
    """Code 2: the API rejected the request's data."""

    code = _facts.INVALID_INPUT
    meaning = CODE_MEANINGS[_facts.INVALID_INPUT]


class AuthenticationError(APIError):
    """Code 3 or HTTP 401: the API key is missing or wrong."""

    code = _facts.INVALID_TOKEN
    meaning = CODE_MEANINGS[_facts.INVALID_TOKEN]


class InvalidEndpointError(APIError):
    """Code 4: the API does not know the endpoint."""

    code = _facts.INVALID_ENDPOINT
    meaning = CODE_MEANINGS[_facts.INVALID_ENDPOINT]


class RateLimitError(APIError):
    """Code 5 or HTTP 429. ``retry_after`` is the server's hint in seconds, when it gave one."""

    code = _facts.RATE_LIMITED
    meaning = CODE_MEANINGS[_facts.RATE_LIMITED]

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class ApplicationError(APIError):
    """Code 6: the request was understood and refused; ``error`` says why."""

    code = _facts.APPLICATION_ERROR
    meaning = CODE_MEANINGS[_facts.APPLICATION_ERROR]
    error_string: ClassVar[str | None] = None


class ExceededMaxStepError(ApplicationError):
    """A spot price was lowered by more than ``max_step`` (per day) at once."""

    error_string = _facts.EXCEEDED_MAX_STEP

    @property
    def max_step(self) -> float | None:
        """The largest allowed lowering, per day, as the API reported it."""
        return _number(self.body.get("max_step"))


class SpotPriceLoweringTooSoonError(ApplicationError):
    """A spot price may be lowered once per 600 s; ``time_to_lowering`` seconds remain.

    Raised by the API, or locally (``local`` is True) before a request is spent.
    ``time_to_lowering`` is in the server's seconds, as the API reports it;
    ``wait_seconds`` is how long the caller really waits (seconds of the client's clock:
    the same against the real API, fewer against a time-scaled sandbox).
    """

    error_string = _facts.LOWERING_TOO_SOON

    def __init__(
        self, *args: Any, local: bool = False, wait_seconds: float | None = None, **kwargs: Any
    ) -> None:
        self.local = local
        self._wait_seconds = wait_seconds
        super().__init__(*args, **kwargs)

    @property
    def time_to_lowering(self) -> float | None:
        """Server seconds until the next lowering is allowed (the API's figure)."""
        return _number(self.body.get("time_to_lowering"))

    @property
    def wait_seconds(self) -> float | None:
        """Seconds of the client's clock until the next lowering: ``time_to_lowering``
        divided by the server's time scale (the SDK sets it; else ``time_to_lowering``)."""
        return self.time_to_lowering if self._wait_seconds is None else self._wait_seconds

    @wait_seconds.setter
    def wait_seconds(self, value: float | None) -> None:
        self._wait_seconds = value
        self.args = (self._message(),)

    def _message(self) -> str:
        text = super()._message()
        left = self.time_to_lowering
        if left is not None:
            wait = self.wait_seconds
            scaled = wait is not None and abs(wait - left) >= 0.5
            text += f" ({left:.0f} s left" + (f"; {wait:.1f} s of client time)" if scaled else ")")
        if self.local:
            text += " [checked locally; no request sent]"
        return text


class ServerAlreadyRentedError(ApplicationError):
    """The server is rented by someone else."""

    error_string = _facts.SERVER_ALREADY_RENTED


class NotEnoughBalanceError(ApplicationError):
    """The wallet of the order's currency cannot pay."""

    error_string = _facts.NOT_ENOUGH_BALANCE


class TooLowPriceError(ApplicationError):
    """The spot bid is below the server's minimum.

    ``minimum`` (per day, in ``currency``) when known: the API's answer does not carry it,
    so whoever looks it up (``spot_marketplace``'s ``server.min_pricing``) makes the error
    that says it with ``with_minimum``; the message then states it.
    """

    error_string = _facts.TOO_LOW_PRICE

    def __init__(
        self,
        *args: Any,
        minimum: float | None = None,
        currency: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.minimum = minimum
        self.currency = currency
        super().__init__(*args, **kwargs)

    def _message(self) -> str:
        text = super()._message()
        if self.minimum is None:
            return text
        amount = f"{self.minimum:.8f}".rstrip("0").rstrip(".") or "0"
        return f"{text} (the server's spot minimum is {amount} {self.currency or ''}/day)"

    def with_minimum(self, minimum: float, currency: str) -> TooLowPriceError:
        """The same refusal, stating the server's spot ``minimum`` per day in ``currency``."""
        return type(self)(
            self.code,
            self.error,
            body=self.body,
            status_code=self.status_code,
            endpoint=self.endpoint,
            minimum=minimum,
            currency=currency,
        )


class ServerOfflineError(ApplicationError):
    """The server is offline."""

    error_string = _facts.SERVER_OFFLINE


class CurrencyNotAllowedError(ApplicationError):
    """The server does not accept the order's currency."""

    error_string = _facts.CURRENCY_NOT_ALLOWED


class PriceChangedError(ApplicationError):
    """The price differs from ``required_price``: nothing was rented."""

    error_string = _facts.PRICE_CHANGED


class UnexpectedResponseError(CloreError):
    """The API answered something that is not a valid response (5xx, not JSON, bad shape)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class TransportError(CloreError):
    """The request got no answer."""


class APIConnectionError(TransportError):
    """Connecting failed, or the connection dropped before an answer."""


class APITimeoutError(TransportError):
    """No answer arrived within the timeout."""


class ParameterError(CloreError, ValueError):
    """An argument is invalid; nothing was sent. ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(f"{param}: {message}")


class OrderError(CloreError):
    """A problem with a specific order; ``order_id`` names it when known."""

    def __init__(self, message: str, *, order_id: int | None = None) -> None:
        self.order_id = order_id
        super().__init__(message)


class OrderNotFoundError(OrderError):
    """The order is not among the caller's orders."""


class OrderExpiredError(OrderError):
    """The order has expired (or was cancelled)."""


class OrderUnconfirmedError(OrderError):
    """create_order could not establish whether the order exists; nothing was retried."""


class ServerNotFoundError(CloreError):
    """No server has this id (``spot_marketplace`` answered ``exists: false``)."""

    def __init__(self, message: str, *, server_id: int | None = None) -> None:
        self.server_id = server_id
        super().__init__(message)


class WaitTimeoutError(CloreError):
    """Waiting for a condition ran out of time."""


class ConfigError(CloreError):
    """The configuration file or a setting is invalid."""


_BY_CODE: Final[Mapping[int, type[APIError]]] = {
    cls.code: cls
    for cls in (
        DatabaseError,
        InvalidInputError,
        AuthenticationError,
        InvalidEndpointError,
        RateLimitError,
        ApplicationError,
    )
}

_CODE_BY_STATUS: Final[Mapping[int, int]] = {
    status: code for code, status in _facts.HTTP_STATUS.items()
}

_BY_ERROR_STRING: Final[Mapping[str, type[ApplicationError]]] = {
    cls.error_string: cls
    for cls in (
        ExceededMaxStepError,
        SpotPriceLoweringTooSoonError,
        ServerAlreadyRentedError,
        NotEnoughBalanceError,
        TooLowPriceError,
        ServerOfflineError,
        CurrencyNotAllowedError,
        PriceChangedError,
    )
    if cls.error_string is not None
}


def error_from_response(
    body: Mapping[str, Any],
    *,
    status_code: int | None = None,
    endpoint: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """Build the exception for a decoded error response (``code`` != 0, or HTTP 401/429)."""
    raw_code = body.get("code")
    code = raw_code if isinstance(raw_code, int) else -1
    # HTTP 401 is always an authentication failure and 429 a rate limit, whatever the body.
    code = _CODE_BY_STATUS.get(status_code or 0, code)
    raw_error = body.get("error")
    error = None if raw_error is None else str(raw_error)
    cls: type[APIError] = _BY_CODE.get(code, APIError)
    if code == _facts.APPLICATION_ERROR and error is not None:
        cls = _BY_ERROR_STRING.get(error, ApplicationError)
    kwargs: dict[str, Any] = {"body": body, "status_code": status_code, "endpoint": endpoint}
    if cls is RateLimitError:
        kwargs["retry_after"] = retry_after
    return cls(code, error, **kwargs)
