"""The sans-I/O core: requests, responses and transport failures.

Nothing here sends a byte, sleeps or loops. The endpoint table is ``clore._facts``'s
(``ENDPOINTS``, re-exported here). ``build_request`` turns an endpoint and its
arguments into a ``Request``; ``decode_response`` turns what came back into the typed
result or the matching ``clore`` error; ``outcome_of`` classifies a failure for the retry
decision. The multi-step operations built from these live in ``clore._flows``.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import msgspec

from clore import _wire
from clore._errors import (
    APIConnectionError,
    APITimeoutError,
    CloreError,
    DatabaseError,
    RateLimitError,
    UnexpectedResponseError,
    error_from_response,
)
from clore._facts import AUTH_HEADER, ENDPOINTS, RETRY_AFTER_HEADER, Endpoint
from clore._retry import Outcome
from clore._version import __version__
from clore._wire import MarketplaceResponse, Server, ascii_int

__all__ = [
    "ENDPOINTS",
    "ConnectError",
    "ConnectTimeoutError",
    "Endpoint",
    "Request",
    "Response",
    "TransportFailure",
    "build_request",
    "decode_response",
    "outcome_of",
    "parse_retry_after",
    "response_type",
    "user_agent",
]

log = logging.getLogger("clore")


# --------------------------------------------------------------------------- endpoints


def response_type(endpoint: Endpoint) -> type[Any]:
    """The ``clore._wire`` Struct that ``endpoint``'s answers decode into."""
    kind = _RESPONSE_TYPES.get(endpoint.response)
    if kind is None:
        kind = _RESPONSE_TYPES[endpoint.response] = getattr(_wire, endpoint.response)
    return kind


_RESPONSE_TYPES: dict[str, type[Any]] = {}


def user_agent() -> str:
    """The descriptive User-Agent (Cloudflare in front of the API refuses anonymous ones)."""
    import httpx

    return (
        f"clore-python/{__version__} (httpx/{httpx.__version__}; "
        f"python/{platform.python_version()}; {platform.system().lower() or 'unknown'})"
    )


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Request:
    """A request ready to send. Its repr leaves out the headers (they carry the key)."""

    endpoint: str
    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    content: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Response:
    """What came back: status, lower-cased headers, body."""

    status: int
    headers: Mapping[str, str]
    content: bytes


class ConnectError(APIConnectionError):
    """The connection could not be made: the request was certainly not sent."""


class ConnectTimeoutError(APITimeoutError):
    """Connecting timed out: the request was certainly not sent."""


@dataclass(frozen=True)
class TransportFailure:
    """No answer: ``error`` says why (``ConnectError``/``ConnectTimeoutError`` = not sent)."""

    error: CloreError


# --------------------------------------------------------------------------- requests


def build_request(
    endpoint: Endpoint,
    base_url: str,
    api_key: str | None,
    agent: str,
    *,
    params: Mapping[str, str] | None = None,
    body: Any = None,
) -> Request:
    """The request for ``endpoint``; the key goes in the ``auth`` header, never the URL."""
    # The base URL ends in /v1 (``endpoint.path`` is the same path under the bare host).
    url = f"{base_url.rstrip('/')}/{endpoint.name}"
    if params:
        url += "?" + urlencode(params)
    headers = {"User-Agent": agent, "Accept": "application/json"}
    if api_key:
        headers[AUTH_HEADER] = api_key
    content = None
    if body is not None:
        content = msgspec.json.encode(body)
        headers["Content-Type"] = "application/json"
    return Request(endpoint.name, endpoint.method, url, headers, content)


# --------------------------------------------------------------------------- responses


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(kind: type[Any]) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind, strict=False)
    return decoder


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    import time

    return max(0.0, when.timestamp() - time.time())


def _as_dict(content: bytes) -> dict[str, Any] | None:
    try:
        body = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return None
    return body if isinstance(body, dict) else None


def _unexpected(endpoint: Endpoint, status: int, why: str) -> UnexpectedResponseError:
    return UnexpectedResponseError(f"{endpoint.name}: HTTP {status}: {why}", status_code=status)


def _raise_for(
    endpoint: Endpoint, status: int, body: dict[str, Any], retry_after: float | None
) -> None:
    raw_code = body.get("code", 0)
    try:
        code = int(raw_code)
    except (TypeError, ValueError):
        raise _unexpected(endpoint, status, f"invalid code {raw_code!r}") from None
    if code != 0 or status in (401, 429):
        body = {**body, "code": code}
        raise error_from_response(
            body, status_code=status, endpoint=endpoint.name, retry_after=retry_after
        )
    if not 200 <= status < 300:
        raise _unexpected(endpoint, status, "error status without an API code")


def _without_nulls(value: Any) -> Any:
    """``value`` with every ``null`` object member removed: the tolerant reader reads a
    null field as a missing one (its default), as it does for ``wallet.balance``."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _salvage_marketplace(body: dict[str, Any]) -> MarketplaceResponse:
    # One malformed server record must not hide the other 3,499: decode one by one.
    servers: list[Server] = []
    skipped = 0
    raw_servers = body.get("servers")
    for record in raw_servers if isinstance(raw_servers, list) else []:
        try:
            servers.append(msgspec.convert(_without_nulls(record), Server, strict=False))
        except msgspec.ValidationError as exc:
            skipped += 1
            log.debug("marketplace: skipped a malformed server record: %s", exc)
    if skipped:
        log.warning("marketplace: skipped %d malformed server record(s)", skipped)
    mine = body.get("my_servers")
    my_servers: list[int] = []
    for raw in mine if isinstance(mine, list) else []:
        number = ascii_int(raw) if isinstance(raw, str) else raw  # ids may come as strings
        if isinstance(number, int) and not isinstance(number, bool):
            my_servers.append(number)
    return MarketplaceResponse(servers=servers, my_servers=my_servers, code=0)


def decode_response(
    endpoint: Endpoint,
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    raw: bool = False,
) -> Any:
    """The typed result of a response (a dict when ``raw``), or raise the matching error.

    HTTP 429 → RateLimitError (with Retry-After); 401 → AuthenticationError; a non-zero
    ``code`` → its APIError; non-JSON or a 5xx without a code → UnexpectedResponseError.
    """
    retry_after = parse_retry_after(headers.get(RETRY_AFTER_HEADER))
    if raw or status == 429:
        body = _as_dict(content)
        if body is None:
            if status in (401, 429):
                _raise_for(endpoint, status, {}, retry_after)
            raise _unexpected(endpoint, status, "response is not a JSON object")
        _raise_for(endpoint, status, body, retry_after)
        return body
    try:
        result = _decoder(response_type(endpoint)).decode(content)
    except msgspec.ValidationError as exc:
        body = _as_dict(content)
        if body is None:
            raise _unexpected(endpoint, status, "response is not a JSON object") from None
        _raise_for(endpoint, status, body, retry_after)
        try:
            # The slow path, only for bodies the typed decoder refused: nulls where a
            # value or an object was expected are read as missing fields.
            return msgspec.convert(_without_nulls(body), response_type(endpoint), strict=False)
        except msgspec.ValidationError:
            pass
        if endpoint.name == "marketplace":
            return _salvage_marketplace(body)
        raise _unexpected(endpoint, status, f"unexpected shape: {exc}") from None
    except msgspec.DecodeError:
        if status == 401:
            _raise_for(endpoint, status, {}, retry_after)
        raise _unexpected(endpoint, status, "response is not JSON") from None
    if result.code != 0 or not 200 <= status < 300:
        _raise_for(endpoint, status, _as_dict(content) or {"code": result.code}, retry_after)
    return result


def outcome_of(error: BaseException) -> Outcome:
    """Classify a failed attempt for the retry decision."""
    if isinstance(error, RateLimitError):
        return Outcome.RATE_LIMITED
    if isinstance(error, DatabaseError):
        return Outcome.DATABASE
    if isinstance(error, ConnectError | ConnectTimeoutError):
        return Outcome.NOT_CONNECTED
    if isinstance(error, APITimeoutError):
        return Outcome.TIMEOUT
    if isinstance(error, APIConnectionError):
        return Outcome.DROPPED
    if isinstance(error, UnexpectedResponseError) and (error.status_code or 0) >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.FATAL
