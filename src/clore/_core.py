"""The sans-I/O core: endpoints, requests, decoding, and every multi-step operation.

Nothing here sends a byte or sleeps. A *flow* is a generator that yields actions —
``Send(request)`` answered with a ``Response`` or a ``TransportFailure``, ``Sleep(s)``
answered with None — and returns the operation's result. ``clore._client`` drives the
same flows with sync httpx (``Clore``) and async httpx (``AsyncClore``), so pacing,
retries, create_order's reconciliation and wait_for_order's polling exist once.
"""

from __future__ import annotations

import logging
import platform
import random
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, TypeVar
from urllib.parse import urlencode

import msgspec

from clore import _validate
from clore._clock import Clock
from clore._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    CloreError,
    DatabaseError,
    OrderExpiredError,
    OrderNotFoundError,
    OrderUnconfirmedError,
    RateLimitError,
    ServerAlreadyRentedError,
    ServerNotFoundError,
    SpotPriceLoweringTooSoonError,
    UnexpectedResponseError,
    WaitTimeoutError,
    error_from_response,
)
from clore._pacing import Kind, Pacer
from clore._retry import Outcome, backoff, decide, is_uncertain
from clore._version import __version__
from clore._wire import (
    CreateOrderRequest,
    Envelope,
    MarketplaceResponse,
    MyOrdersResponse,
    MyServer,
    MyServersResponse,
    Order,
    PohBalance,
    RenterFees,
    Server,
    ServerConfig,
    ServerConfigRequest,
    ServerConfigResponse,
    SpotMarket,
    SpotMarketplaceResponse,
    Wallet,
    WalletsResponse,
)

__all__ = [
    "ENDPOINTS",
    "ConnectError",
    "ConnectTimeoutError",
    "Context",
    "Endpoint",
    "Flow",
    "Request",
    "Response",
    "Send",
    "Sleep",
    "TransportFailure",
    "build_request",
    "decode_response",
    "outcome_of",
    "user_agent",
]

log = logging.getLogger("clore")
T = TypeVar("T")


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class Endpoint:
    """One API endpoint: how it is called, whether it needs a key, whether reads repeat."""

    name: str
    method: Literal["GET", "POST"]
    auth: bool
    idempotent: bool
    response: type[Any]
    kind: Kind = "request"


ENDPOINTS: Final[Mapping[str, Endpoint]] = {
    ep.name: ep
    for ep in (
        Endpoint("marketplace", "GET", False, True, MarketplaceResponse),
        Endpoint("spot_marketplace", "GET", False, True, SpotMarketplaceResponse),
        Endpoint("my_orders", "GET", True, True, MyOrdersResponse),
        Endpoint("create_order", "POST", True, False, Envelope, "create"),
        Endpoint("cancel_order", "POST", True, False, Envelope),
        Endpoint("set_spot_price", "POST", True, False, Envelope),
        Endpoint("wallets", "GET", True, True, WalletsResponse),
        Endpoint("my_servers", "GET", True, True, MyServersResponse),
        Endpoint("server_config", "GET", True, True, ServerConfigResponse),
        Endpoint("set_server_settings", "POST", True, False, Envelope),
        Endpoint("renter_fees", "GET", False, True, RenterFees),
        Endpoint("poh_balance", "GET", True, True, PohBalance),
    )
}


def user_agent() -> str:
    """The descriptive User-Agent (Cloudflare in front of the API refuses anonymous ones)."""
    import httpx

    return (
        f"clore-python/{__version__} (httpx/{httpx.__version__}; "
        f"python/{platform.python_version()}; {platform.system().lower() or 'unknown'})"
    )


# --------------------------------------------------------------------------- actions


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


@dataclass(frozen=True)
class Send:
    """Action: send ``request``; the driver answers with a Response or TransportFailure."""

    request: Request


@dataclass(frozen=True)
class Sleep:
    """Action: wait ``seconds`` on the client's clock."""

    seconds: float


Action = Send | Sleep
Flow = Generator[Action, Any, T]


@dataclass
class Context:
    """What the flows need from a client: where, who, when, and how patient."""

    base_url: str
    api_key: str | None
    user_agent: str
    clock: Clock
    pacer: Pacer
    max_retries: int = 3
    timeout: float = 30.0  # how long one request may hold the key (see _pacing)
    rng: random.Random = field(default_factory=random.Random)
    confirm_polls: int = 3  # my_orders checks before create_order gives up finding its order


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
    url = f"{base_url.rstrip('/')}/{endpoint.name}"
    if params:
        url += "?" + urlencode(params)
    headers = {"User-Agent": agent, "Accept": "application/json"}
    if api_key:
        headers["auth"] = api_key
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


def _salvage_marketplace(body: dict[str, Any]) -> MarketplaceResponse:
    # One malformed server record must not hide the other 3,499: decode one by one.
    servers: list[Server] = []
    skipped = 0
    raw_servers = body.get("servers")
    for record in raw_servers if isinstance(raw_servers, list) else []:
        try:
            servers.append(msgspec.convert(record, Server, strict=False))
        except msgspec.ValidationError as exc:
            skipped += 1
            log.debug("marketplace: skipped a malformed server record: %s", exc)
    if skipped:
        log.warning("marketplace: skipped %d malformed server record(s)", skipped)
    mine = body.get("my_servers")
    my_servers = [m for m in mine if isinstance(m, int)] if isinstance(mine, list) else []
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
    retry_after = parse_retry_after(headers.get("retry-after"))
    if raw or status == 429:
        body = _as_dict(content)
        if body is None:
            if status in (401, 429):
                _raise_for(endpoint, status, {}, retry_after)
            raise _unexpected(endpoint, status, "response is not a JSON object")
        _raise_for(endpoint, status, body, retry_after)
        return body
    try:
        result = _decoder(endpoint.response).decode(content)
    except msgspec.ValidationError as exc:
        body = _as_dict(content)
        if body is None:
            raise _unexpected(endpoint, status, "response is not a JSON object") from None
        _raise_for(endpoint, status, body, retry_after)
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


# --------------------------------------------------------------------------- the one loop


def _pace(ctx: Context, kind: Kind) -> Flow[None]:
    # Reserve-then-send: the slot is taken under the lock only when it is free now;
    # otherwise sleep the computed wait and ask again (another process may have gone).
    while (wait := ctx.pacer.reserve(kind, ctx.clock.time(), ctx.timeout)) > 0:
        yield Sleep(wait)


def _exchange(
    ctx: Context, kind: Kind, request: Request
) -> Flow[tuple[Response | TransportFailure, float]]:
    # Send one paced request and release the key when its answer is in, also when the
    # flow is abandoned mid-request (a cancelled task closes the generator here).
    yield from _pace(ctx, kind)
    released = False
    started = ctx.clock.monotonic()
    try:
        reply: Response | TransportFailure = yield Send(request)
        rate_limited = isinstance(reply, Response) and reply.status == 429
        ctx.pacer.complete(kind, ctx.clock.time(), rate_limited=rate_limited)
        released = True
        return reply, ctx.clock.monotonic() - started
    finally:
        if not released:
            ctx.pacer.complete(kind, ctx.clock.time())


def call(
    ctx: Context,
    name: str,
    *,
    params: Mapping[str, str] | None = None,
    body: Any = None,
    raw: bool = False,
) -> Flow[Any]:
    """Pace, send, decode; retry what may be retried (reads; writes only when not acted on)."""
    endpoint = ENDPOINTS[name]
    if endpoint.auth and not ctx.api_key:
        raise AuthenticationError(
            3,
            "no API key configured (pass api_key, set CLORE_API_KEY or add a profile)",
            endpoint=name,
        )
    request = build_request(
        endpoint, ctx.base_url, ctx.api_key, ctx.user_agent, params=params, body=body
    )
    attempt = 0
    while True:
        attempt += 1
        reply, elapsed = yield from _exchange(ctx, endpoint.kind, request)
        status: int | str = "-"
        retry_after = None
        try:
            if isinstance(reply, TransportFailure):
                raise reply.error
            status = reply.status
            retry_after = parse_retry_after(reply.headers.get("retry-after"))
            result = decode_response(endpoint, reply.status, reply.headers, reply.content, raw=raw)
        except CloreError as exc:
            outcome = outcome_of(exc)
            if outcome is Outcome.RATE_LIMITED and status != 429:
                ctx.pacer.penalize(ctx.clock.time())  # code 5 with HTTP 200
            code = exc.code if isinstance(exc, APIError) else "-"
            log.debug(
                "%s %s -> HTTP %s code %s (%s) in %.3fs, attempt %d",
                request.method, name, status, code, outcome.value, elapsed, attempt,
            )  # fmt: skip
            decision = decide(
                attempt,
                outcome,
                idempotent=endpoint.idempotent,
                max_retries=ctx.max_retries,
                retry_after=exc.retry_after if isinstance(exc, RateLimitError) else retry_after,
                rng=ctx.rng,
            )
            if not decision.retry:
                raise
            yield Sleep(decision.delay)
            continue
        log.debug(
            "%s %s -> HTTP %s code 0 in %.3fs, attempt %d",
            request.method, name, status, elapsed, attempt,
        )  # fmt: skip
        return result


# --------------------------------------------------------------------------- endpoints


def marketplace(ctx: Context) -> Flow[list[Server]]:
    """Every server on the marketplace (malformed records are skipped and logged)."""
    response: MarketplaceResponse = yield from call(ctx, "marketplace")
    return response.servers


def spot_marketplace(ctx: Context, server_id: int) -> Flow[SpotMarket]:
    """Offers on ``server_id``; ServerNotFoundError when the server does not exist."""
    sid = _validate.validate_id(server_id, "server_id")
    response: SpotMarketplaceResponse = yield from call(
        ctx, "spot_marketplace", params={"market": str(sid)}
    )
    if not response.exists or response.market is None:
        raise ServerNotFoundError(f"no server with id {sid}", server_id=sid)
    return response.market


def my_orders(ctx: Context, include_completed: bool = False) -> Flow[list[Order]]:
    """The caller's orders; pacing learns the current spot bids from them."""
    params = {"return_completed": "true" if include_completed else "false"}
    response: MyOrdersResponse = yield from call(ctx, "my_orders", params=params)
    bids = {o.id: float(o.price) for o in response.orders if o.spot and not o.expired}
    ctx.pacer.observe_bids(bids, ctx.clock.time())
    return response.orders


def get_order(ctx: Context, order_id: int) -> Flow[Order]:
    """One order by id (completed ones included); OrderNotFoundError if absent."""
    oid = _validate.validate_id(order_id, "order_id")
    for order in (yield from my_orders(ctx, include_completed=True)):
        if order.id == oid:
            return order
    raise OrderNotFoundError(f"order {oid} is not among your orders", order_id=oid)


def _find_new_order(
    ctx: Context, request: CreateOrderRequest, known: set[int], polls: int
) -> Flow[Order | None]:
    # The API answers create_order with {"code": 0} only: the new order is the one on
    # this server that was not in the snapshot taken before sending (newest if several).
    for _ in range(max(1, polls)):
        try:
            orders = yield from my_orders(ctx, include_completed=True)
        except CloreError as exc:
            raise OrderUnconfirmedError(
                f"create_order on server {request.renting_server}: could not check my_orders "
                f"({exc}); the order may exist"
            ) from exc
        fresh = [o for o in orders if o.si == request.renting_server and o.id not in known]
        if fresh:
            return max(fresh, key=lambda o: (float(o.ct), o.id))
    return None


def create_order(ctx: Context, request: CreateOrderRequest) -> Flow[Order]:
    """Rent exactly once and return the new Order (found via my_orders).

    Uncertain outcomes (timeout, dropped connection, 5xx, code 1) are reconciled through
    my_orders before a retry; a retry answered ``server-already-rented`` is reconciled
    again, since the earlier attempt may have won. A code-0 answer whose order never
    shows up raises OrderUnconfirmedError and is never retried.
    """
    snapshot = yield from my_orders(ctx, include_completed=True)
    known = {order.id for order in snapshot}
    attempt = 0
    while True:
        attempt += 1
        try:
            yield from call(ctx, "create_order", body=request)
        except ServerAlreadyRentedError:
            if attempt > 1:
                found = yield from _find_new_order(ctx, request, known, 1)
                if found is not None:
                    return _created(ctx, request, found)
            raise
        except CloreError as exc:
            if not is_uncertain(outcome_of(exc)):
                raise
            log.debug("create_order: outcome unknown (%s); checking my_orders", exc)
            found = yield from _find_new_order(ctx, request, known, ctx.confirm_polls)
            if found is not None:
                return _created(ctx, request, found)
            if attempt > ctx.max_retries:
                raise
            yield Sleep(backoff(attempt, ctx.rng))
            continue
        found = yield from _find_new_order(ctx, request, known, ctx.confirm_polls)
        if found is None:
            raise OrderUnconfirmedError(
                f"create_order on server {request.renting_server} answered code 0 but no new "
                f"order appeared in my_orders after {ctx.confirm_polls} checks; not retried"
            )
        return _created(ctx, request, found)


def _created(ctx: Context, request: CreateOrderRequest, order: Order) -> Order:
    if request.type == "spot":
        ctx.pacer.note_bid(order.id, float(order.price), ctx.clock.time())
    log.debug("create_order: server %d -> order %d", request.renting_server, order.id)
    return order


def cancel_order(ctx: Context, order_id: int, issue: str | None = None) -> Flow[None]:
    """Cancel an order or spot offer (``issue`` reports a problem with the server)."""
    yield from call(ctx, "cancel_order", body=_validate.validate_cancel_order(order_id, issue))


def set_spot_price(ctx: Context, order_id: int, price: float) -> Flow[None]:
    """Change a spot bid; a lowering inside the 600 s window fails locally, unsent."""
    request = _validate.validate_set_spot_price(order_id, price)
    now = ctx.clock.time()
    left = ctx.pacer.spot_wait(request.order_id, float(request.desired_price), now)
    if left > 0:
        raise SpotPriceLoweringTooSoonError(
            6,
            "can_lower_every_600_seconds",
            body={"code": 6, "error": "can_lower_every_600_seconds", "time_to_lowering": left},
            endpoint="set_spot_price",
            local=True,
        )
    try:
        yield from call(ctx, "set_spot_price", body=request)
    except SpotPriceLoweringTooSoonError as exc:
        if exc.time_to_lowering is not None:
            interval = ctx.pacer.config.spot_lower_interval
            lowered_at = now - max(0.0, interval - exc.time_to_lowering)
            ctx.pacer.note_bid(request.order_id, None, now, lowered_at=lowered_at)
        raise
    ctx.pacer.note_bid(request.order_id, float(request.desired_price), ctx.clock.time())


def wait_for_order(
    ctx: Context, order_id: int, timeout: float = 600.0, poll_interval: float | None = None
) -> Flow[Order]:
    """Poll my_orders until the order has hosts and ports; raise if it ends or vanishes."""
    oid = _validate.validate_id(order_id, "order_id")
    pause = 2.0 if poll_interval is None else max(0.0, poll_interval)
    deadline = ctx.clock.time() + timeout
    while True:
        orders = yield from my_orders(ctx, include_completed=True)
        order = next((o for o in orders if o.id == oid), None)
        if order is None:
            raise OrderNotFoundError(f"order {oid} is not among your orders", order_id=oid)
        if order.expired:
            raise OrderExpiredError(f"order {oid} ended before it was ready", order_id=oid)
        if order.ready:
            return order
        left = deadline - ctx.clock.time()
        if left <= 0:
            raise WaitTimeoutError(f"order {oid} not ready after {timeout:g} s")
        yield Sleep(min(pause, left))


def wallets(ctx: Context) -> Flow[list[Wallet]]:
    """The caller's wallets and balances."""
    response: WalletsResponse = yield from call(ctx, "wallets")
    return response.wallets


def my_servers(ctx: Context) -> Flow[list[MyServer]]:
    """The servers the caller hosts."""
    response: MyServersResponse = yield from call(ctx, "my_servers")
    return response.servers


def server_config(ctx: Context, server_name: str) -> Flow[ServerConfig]:
    """One hosted server's configuration (a GET with a JSON body)."""
    name = _validate.validate_server_name(server_name)
    response: ServerConfigResponse = yield from call(
        ctx, "server_config", body=ServerConfigRequest(server_name=name)
    )
    if response.config is None:
        raise ServerNotFoundError(f"no hosted server named {name!r}")
    return response.config


def set_server_settings(ctx: Context, body: Mapping[str, Any]) -> Flow[None]:
    """Change a hosted server's settings (``body`` from validate_server_settings)."""
    yield from call(ctx, "set_server_settings", body=dict(body))


def renter_fees(ctx: Context) -> Flow[RenterFees]:
    """Renter and creation fees per order type and currency."""
    response: RenterFees = yield from call(ctx, "renter_fees")
    return response


def poh_balance(ctx: Context) -> Flow[PohBalance]:
    """The caller's proof-of-holding balance."""
    response: PohBalance = yield from call(ctx, "poh_balance")
    return response
