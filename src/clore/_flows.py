"""The multi-step operations of the SDK as sans-I/O flows.

A *flow* is a generator that yields actions — ``Send(request)`` answered with a
``Response`` or a ``TransportFailure``, ``Sleep(s)`` answered with None, ``Probe(host,
port)`` answered with the bytes a TCP server sent first (``wait_for_order``'s SSH
reachability check) — and returns the operation's result. ``call`` is the one pace →
send → decode → retry loop; every endpoint flow, create_order's claim/snapshot/send/
reconcile and wait_for_order's polling are built on it.
``clore._client`` drives the same flows with sync httpx (``Clore``) and async httpx
(``AsyncClore``), so none of this exists twice. Requests and responses are ``clore._core``'s.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from clore import _validate
from clore._clock import Clock
from clore._core import (
    ENDPOINTS,
    Request,
    Response,
    TransportFailure,
    build_request,
    decode_response,
    outcome_of,
    parse_retry_after,
)
from clore._errors import (
    APIError,
    AuthenticationError,
    CloreError,
    InvalidEndpointError,
    OrderExpiredError,
    OrderNotFoundError,
    OrderUnconfirmedError,
    RateLimitError,
    ServerNotFoundError,
    SpotPriceLoweringTooSoonError,
    UnexpectedResponseError,
    WaitTimeoutError,
)
from clore._facts import APPLICATION_ERROR, LOWERING_TOO_SOON, RETRY_AFTER_HEADER, Kind
from clore._pacing import CLAIM_POLL, CLAIM_WAIT, Busy, Claim, Pacer
from clore._redis import LeaseLostError, ServerClaimedError
from clore._retry import Outcome, backoff, decide, is_uncertain
from clore._servertime import ServerTime
from clore._wire import (
    CreateOrderRequest,
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
    SetServerSettingsPerCurrencyRequest,
    SetServerSettingsRequest,
    SpotMarket,
    SpotMarketplaceResponse,
    Wallet,
    WalletsResponse,
)

__all__ = [
    "PROBE_LIMIT",
    "PROBE_TIMEOUT",
    "Action",
    "Context",
    "Flow",
    "Probe",
    "Send",
    "Sleep",
    "banner_read",
    "call",
    "cancel_order",
    "create_order",
    "get_order",
    "marketplace",
    "my_orders",
    "my_servers",
    "poh_balance",
    "renter_fees",
    "server_config",
    "set_server_settings",
    "set_spot_price",
    "spot_marketplace",
    "ssh_banner",
    "wait_for_order",
    "wallets",
]

log = logging.getLogger("clore")
T = TypeVar("T")


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Send:
    """Action: send ``request``; the driver answers with a Response or TransportFailure."""

    request: Request


@dataclass(frozen=True)
class Sleep:
    """Action: wait ``seconds`` on the client's clock."""

    seconds: float


#: How long one reachability probe waits for a connection and the SSH banner (seconds of
#: real time: it is network I/O, not a wait on the client's clock).
PROBE_TIMEOUT: Final = 5.0
#: At most this many bytes are read from a probed server.
PROBE_LIMIT: Final = 1024


@dataclass(frozen=True)
class Probe:
    """Action: connect to ``host:port`` over TCP and read what the server sends first, for
    at most ``timeout`` seconds; the driver answers with the bytes read (``b""`` when the
    connection failed), stopping once ``banner_read`` says enough came. Nothing is sent."""

    host: str
    port: int
    timeout: float = PROBE_TIMEOUT


def ssh_banner(data: bytes) -> bool:
    """True when ``data`` holds an SSH identification line (``SSH-2.0-...``; RFC 4253 lets
    a server send other lines before it)."""
    return any(line.startswith(b"SSH-") for line in data.split(b"\n"))


def banner_read(data: bytes) -> bool:
    """True when a probe has read enough: the SSH banner's start, or ``PROBE_LIMIT``."""
    return ssh_banner(data) or len(data) >= PROBE_LIMIT


Action = Send | Sleep | Probe
Flow = Generator[Action, Any, T]


@dataclass
class Context:
    """What the flows need from a client: where, who, when, and how patient.

    ``clock`` is the client's (pacing, sleeps); ``server`` estimates the server's clock
    from every response (``clore._servertime``), for the rules decided on it. Its repr
    leaves the key out: tracebacks that show locals print a flow's context.
    """

    base_url: str
    api_key: str | None = field(repr=False)
    user_agent: str
    clock: Clock
    pacer: Pacer
    max_retries: int = 3
    timeout: float = 30.0  # how long one request may hold the key (see _pacing)
    rng: random.Random = field(default_factory=random.Random)
    confirm_polls: int = 3  # my_orders checks before create_order gives up finding its order
    server: ServerTime = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.server is None:
            self.server = ServerTime(self.clock)


# --------------------------------------------------------------------------- the one loop


def _pace(ctx: Context, kind: Kind) -> Flow[None]:
    # Reserve-then-send: the slot is taken under the lock only when it is free now;
    # otherwise sleep the computed wait and ask again (another process may have gone).
    while (wait := ctx.pacer.reserve(kind, ctx.clock.time(), ctx.timeout)) > 0:
        yield Sleep(wait)


def _exchange(
    ctx: Context, kind: Kind, request: Request, sent_at: list[float] | None = None
) -> Flow[tuple[Response | TransportFailure, float]]:
    # Send one paced request and release the key when its answer is in, also when the
    # flow is abandoned mid-request (a cancelled task closes the generator here).
    yield from _pace(ctx, kind)
    released = False
    started = ctx.clock.monotonic()
    if sent_at is not None:
        sent_at.append(ctx.server.now())
    try:
        reply: Response | TransportFailure = yield Send(request)
        received = ctx.clock.time()
        if isinstance(reply, Response):
            ctx.server.observe(reply.headers, received)
        rate_limited = isinstance(reply, Response) and reply.status == 429
        ctx.pacer.complete(kind, received, rate_limited=rate_limited)
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
    sent_at: list[float] | None = None,
) -> Flow[Any]:
    """Pace, send, decode; retry what may be retried (reads; writes only when not acted on).

    ``sent_at`` (optional) collects the server's estimated time as each attempt is sent.
    """
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
        reply, elapsed = yield from _exchange(ctx, endpoint.kind, request, sent_at)
        status: int | str = "-"
        retry_after = None
        try:
            if isinstance(reply, TransportFailure):
                raise reply.error
            status = reply.status
            retry_after = parse_retry_after(reply.headers.get(RETRY_AFTER_HEADER))
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
                hint = _validate.base_url_hint(ctx.base_url)
                if hint and (isinstance(exc, InvalidEndpointError) or status == 404):
                    exc.args = (f"{exc} ({hint})",)
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
    ctx.pacer.observe_bids(bids, ctx.server.now())
    return response.orders


def get_order(ctx: Context, order_id: int) -> Flow[Order]:
    """One order by id (completed ones included); OrderNotFoundError if absent."""
    oid = _validate.validate_id(order_id, "order_id")
    for order in (yield from my_orders(ctx, include_completed=True)):
        if order.id == oid:
            return order
    raise OrderNotFoundError(f"order {oid} is not among your orders", order_id=oid)


def _find_new_order(
    ctx: Context,
    request: CreateOrderRequest,
    known: set[int],
    polls: int,
    spacing: float = 0.0,
    history: str = "",
    claim: Claim | None = None,
) -> Flow[Order | None]:
    # The API answers create_order with {"code": 0} only: the new order is the one on
    # this server that was not in the snapshot taken before sending (newest if several).
    for poll in range(max(1, polls)):
        if poll and spacing > 0:
            yield Sleep(spacing)
        try:
            orders = yield from my_orders(ctx, include_completed=True)
        except CloreError as exc:
            before = f"{history}; " if history else ""
            raise OrderUnconfirmedError(
                f"create_order on server {request.renting_server}: {before}could not check "
                f"my_orders ({exc}); the order may exist"
            ) from exc
        fresh = [o for o in orders if o.si == request.renting_server and o.id not in known]
        if fresh:
            found = max(fresh, key=lambda o: (float(o.ct), o.id))
            if claim is not None:
                # Only while the claim held (checked after this my_orders was read) can no
                # other create_order of the fleet have sent on this server since the
                # snapshot: then the new order is ours.
                _confirm_claim(claim, request, history or "answered code 0", found)
            return found
    return None


def _confirm_claim(
    claim: Claim, request: CreateOrderRequest, history: str, found: Order | None = None
) -> None:
    """Return while ``claim`` holds; else "may exist": with the claim gone another machine
    may have rented the server since, and a new order on it may be that machine's."""
    try:
        claim.check()
    except CloreError as exc:
        seen = f"order {found.id} appeared on it, but " if found is not None else ""
        raise OrderUnconfirmedError(
            f"create_order on server {request.renting_server}: {history}; {seen}"
            f"{' '.join(str(exc).split())}: another create_order of the fleet may have "
            f"rented the server since; the order may exist (look in my_orders before "
            f"renting again)"
        ) from exc


def _claim(ctx: Context, server_id: int) -> Flow[Claim]:
    # Wait (polling, on the client's clock) while another create_order of the fleet holds
    # the server's claim: it may be placing an order there right now.
    started = ctx.clock.monotonic()
    while True:
        got = ctx.pacer.claim(f"server-{server_id}")
        if not isinstance(got, Busy):
            return got
        waited = ctx.clock.monotonic() - started
        if waited >= CLAIM_WAIT:
            raise ServerClaimedError(
                f"create_order on server {server_id}: another create_order of the fleet "
                f"({got.holder}) kept the server claimed for {waited:.0f} s; nothing was "
                "sent (its order, if it placed one, shows in my_orders)",
                server_id=server_id,
                holder=got.holder,
                waited=waited,
            )
        yield Sleep(max(0.01, min(CLAIM_POLL, got.left, CLAIM_WAIT - waited)))


#: Extra my_orders checks, spaced SPOT_POLL_SPACING seconds apart (on top of pacing),
#: before a spot bid whose outcome is unknown is given up as "may exist".
SPOT_EXTRA_POLLS: Final = 4
SPOT_POLL_SPACING: Final = 2.0


def _attempt_text(exc: CloreError, unknown: bool) -> str:
    """What one attempt saw, as the may-exist message tells it."""
    what = {
        Outcome.TIMEOUT: "timed out",
        Outcome.DROPPED: "connection dropped",
        Outcome.SERVER_ERROR: "server error",
    }.get(outcome_of(exc), "outcome unknown" if unknown else "refused")
    return f"{what} ({' '.join(str(exc).split())})"  # one line, whatever the error carried


def _history(seen: list[tuple[int, str]]) -> str:
    """``attempt 1 timed out (...); attempts 2-4 refused (...)``: runs of one outcome joined."""
    runs: list[tuple[int, int, str]] = []
    for number, text in seen:
        if runs and runs[-1][2] == text and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number, text)
        else:
            runs.append((number, number, text))
    return "; ".join(
        f"attempt {a} {text}" if a == b else f"attempts {a}-{b} {text}" for a, b, text in runs
    )


def create_order(ctx: Context, request: CreateOrderRequest) -> Flow[Order]:
    """Rent exactly once and return the new Order (found via my_orders).

    Uncertain outcomes (timeout, dropped connection, 5xx, code 1, a garbled answer) are
    looked up in my_orders. An on-demand order not found there is sent again (a second
    rental of one server is refused with ``server-already-rented``); a spot bid is not,
    since a second send would place a second offer. Once any attempt's outcome was
    uncertain the call stays uncertain until my_orders shows the order: every later
    failure, refusals included (429s, ``server-already-rented``, any code 6), is looked
    up again and then raised as OrderUnconfirmedError ("the order may exist"), naming
    what each attempt saw, with the last error as its cause. A code-0 answer whose
    order never shows up raises OrderUnconfirmedError too. Only a failure with no
    uncertain attempt before it is raised as itself: then nothing was rented.

    The call holds the pacer's claim on the server (``Pacer.claim``) from before the
    snapshot to the end: in a fleet, no other create_order of the key sends on that
    server meanwhile, so the new order found is this call's. It waits while another
    holds the claim (``CLAIM_WAIT`` s at most, then ServerClaimedError, nothing sent).
    The claim is checked before each send and before an order found is returned: a
    claim lost before the first send raises LeaseLostError (nothing sent), lost later
    OrderUnconfirmedError.
    """
    claim = yield from _claim(ctx, request.renting_server)
    with claim:
        order: Order = yield from _create_claimed(ctx, request, claim)
    return order


def _create_claimed(ctx: Context, request: CreateOrderRequest, claim: Claim) -> Flow[Order]:
    snapshot = yield from my_orders(ctx, include_completed=True)
    known = {order.id for order in snapshot}
    seen: list[tuple[int, str]] = []  # attempts from the first in doubt on, and what they saw
    attempt = 0
    while True:
        attempt += 1
        if seen:
            _confirm_claim(claim, request, _history(seen))
        else:
            try:
                claim.check()
            except LeaseLostError as exc:  # nothing was sent yet: nothing can exist
                raise LeaseLostError(
                    f"create_order on server {request.renting_server}: {exc}; nothing was sent"
                ) from None
        try:
            yield from call(ctx, "create_order", body=request)
        except CloreError as exc:
            outcome = outcome_of(exc)
            # A garbled answer (not JSON, a wrong shape) leaves the outcome unknown as well:
            # it is looked up like a 5xx, but never resent, since nothing says it failed.
            unknown = is_uncertain(outcome) or isinstance(exc, UnexpectedResponseError)
            if not unknown and not seen:
                raise  # a definite refusal, and no earlier attempt may have acted
            seen.append((attempt, _attempt_text(exc, unknown)))
            log.debug("create_order: attempt %d %s; checking my_orders", *seen[-1])
            polls, spacing = ctx.confirm_polls, 0.0
            spot = request.type == "spot"
            if spot and unknown:
                # A spot bid is never resent (a second offer), so give a server that
                # commits late a longer window to show the first before giving up.
                polls, spacing = ctx.confirm_polls + SPOT_EXTRA_POLLS, SPOT_POLL_SPACING
            found = yield from _find_new_order(
                ctx, request, known, polls, spacing, _history(seen), claim
            )
            if found is not None:
                return _created(ctx, request, found)
            if is_uncertain(outcome) and not spot and attempt <= ctx.max_retries:
                yield Sleep(backoff(attempt, ctx.rng))
                continue
            raise OrderUnconfirmedError(
                f"create_order on server {request.renting_server}: {_history(seen)}; no new "
                f"order in my_orders after {polls} check(s): the order may exist (look in "
                f"my_orders before renting again)"
            ) from exc
        found = yield from _find_new_order(ctx, request, known, ctx.confirm_polls, claim=claim)
        if found is None:
            raise OrderUnconfirmedError(
                f"create_order on server {request.renting_server} answered code 0 but no new "
                f"order appeared in my_orders after {ctx.confirm_polls} checks; not retried"
            )
        return _created(ctx, request, found)


def _created(ctx: Context, request: CreateOrderRequest, order: Order) -> Order:
    if request.type == "spot":
        ctx.pacer.note_bid(order.id, float(order.price), ctx.server.now())
    log.debug("create_order: server %d -> order %d", request.renting_server, order.id)
    return order


def cancel_order(ctx: Context, order_id: int, issue: str | None = None) -> Flow[None]:
    """Cancel an order or spot offer (``issue`` reports a problem with the server)."""
    yield from call(ctx, "cancel_order", body=_validate.validate_cancel_order(order_id, issue))


def set_spot_price(ctx: Context, order_id: int, price: float) -> Flow[None]:
    """Change a spot bid; a lowering inside the 600 s window fails locally, unsent.

    The window is the server's rule, so it is kept in server time: the local refusal
    fires when the server would refuse, and reports ``time_to_lowering`` in server
    seconds and ``wait_seconds`` in the client's.
    """
    request = _validate.validate_set_spot_price(order_id, price)
    now = ctx.server.now()
    left = ctx.pacer.spot_wait(request.order_id, float(request.desired_price), now)
    if left > 0:
        raise SpotPriceLoweringTooSoonError(
            APPLICATION_ERROR,
            LOWERING_TOO_SOON,
            body={"code": APPLICATION_ERROR, "error": LOWERING_TOO_SOON, "time_to_lowering": left},
            endpoint="set_spot_price",
            local=True,
            wait_seconds=ctx.server.to_client_seconds(left),
        )
    sent_at: list[float] = []
    try:
        yield from call(ctx, "set_spot_price", body=request, sent_at=sent_at)
    except SpotPriceLoweringTooSoonError as exc:
        if exc.time_to_lowering is not None:
            answered = ctx.server.now()
            interval = ctx.pacer.config.spot_lower_interval
            lowered_at = answered - max(0.0, interval - exc.time_to_lowering)
            ctx.pacer.note_bid(request.order_id, None, answered, lowered_at=lowered_at)
            exc.wait_seconds = ctx.server.to_client_seconds(exc.time_to_lowering)
        raise
    # Lowered no later than when it was sent: counting the window from the send keeps
    # the local check from refusing what the server would accept.
    ctx.pacer.note_bid(
        request.order_id,
        float(request.desired_price),
        sent_at[-1] if sent_at else ctx.server.now(),
    )


def wait_for_order(
    ctx: Context, order_id: int, timeout: float = 600.0, poll_interval: float | None = None
) -> Flow[Order]:
    """Poll my_orders until the order is reachable; raise if it ends or vanishes.

    Reachable means provisioned (hosts and ports) and, for an order with an SSH port,
    answering there: a TCP connection to it reads an SSH banner (no login is tried). An
    order forwarding no port 22 is ready once provisioned.
    """
    oid = _validate.validate_id(order_id, "order_id")
    limit = _validate.validate_seconds(timeout, "timeout", forever=True)
    pause = 2.0
    if poll_interval is not None:
        pause = _validate.validate_seconds(poll_interval, "poll_interval")
    deadline = ctx.clock.time() + limit
    unreachable: tuple[str, int] | None = None
    while True:
        orders = yield from my_orders(ctx, include_completed=True)
        order = next((o for o in orders if o.id == oid), None)
        if order is None:
            raise OrderNotFoundError(f"order {oid} is not among your orders", order_id=oid)
        if order.expired:
            raise OrderExpiredError(f"order {oid} ended before it was ready", order_id=oid)
        if order.ready:
            endpoint = order.ssh_endpoint
            if endpoint is None:
                return order
            answer: bytes = yield Probe(endpoint[0], endpoint[1])
            if ssh_banner(answer):
                return order
            unreachable = endpoint
            log.debug("order %s: no SSH banner at %s:%s yet", oid, *endpoint)
        left = deadline - ctx.clock.time()
        if left <= 0:
            if unreachable is not None:
                host, port = unreachable
                raise WaitTimeoutError(
                    f"order {oid} provisioned, but its SSH port {host}:{port} gave no SSH "
                    f"banner within {timeout:g} s"
                )
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


def set_server_settings(
    ctx: Context, body: SetServerSettingsRequest | SetServerSettingsPerCurrencyRequest
) -> Flow[None]:
    """Change a hosted server's settings (``body`` from validate_server_settings)."""
    yield from call(ctx, "set_server_settings", body=body)


def renter_fees(ctx: Context) -> Flow[RenterFees]:
    """Renter and creation fees per order type and currency."""
    response: RenterFees = yield from call(ctx, "renter_fees")
    return response


def poh_balance(ctx: Context) -> Flow[PohBalance]:
    """The caller's proof-of-holding balance."""
    response: PohBalance = yield from call(ctx, "poh_balance")
    return response
