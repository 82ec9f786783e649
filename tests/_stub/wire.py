"""What went over the wire between a client and an in-process sandbox, and a flaky network.

``Wire`` wraps a sandbox's request handler: it records every request with the sandbox's
answer (``seen``, ``sent(endpoint)``, ``rejected``) and runs actions a test registers for
the n-th request to an endpoint just before the sandbox handles it (``before``), so a
test can change the world in the middle of one SDK call. ``transport()`` and
``async_transport()`` are httpx transports through it; ``network`` in front of them fails
requests before they leave (``unreachable``): refused connections and connect timeouts,
which no server can answer with because the request never reaches one.

``free_server``, ``rent``, ``end``, ``mine``, ... arrange and read the sandbox without a
request on the wire (no rate-limit window moves). The API's rules are the sandbox's;
nothing here answers a request by itself.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from clore._wire import CancelOrderRequest, CreateOrderRequest
from clore.sandbox import Sandbox
from clore.sandbox.backend.records import OrderRec
from clore.sandbox.dispatch import SandboxRequest, SandboxResponse
from clore.sandbox.transport import AsyncSandboxTransport, SandboxTransport

__all__ = [
    "Network",
    "Seen",
    "Wire",
    "end",
    "free_server",
    "mine",
    "rent",
    "rented_server",
    "spot_price",
    "user",
]


@dataclass
class Seen:
    """One request as the sandbox received it, and how it answered."""

    endpoint: str
    method: str
    headers: dict[str, str]
    params: dict[str, str]
    body: Any  # the JSON body, decoded; None when there was none
    at: float  # sandbox time
    status: int
    answer: bytes
    detail: str | None

    @property
    def code(self) -> int | None:
        """The answer's API code, None when it was not a JSON object."""
        try:
            decoded = json.loads(self.answer)
        except ValueError:
            return None
        return decoded.get("code") if isinstance(decoded, dict) else None


class Wire:
    """Records the requests to ``sandbox`` (see the module)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.seen: list[Seen] = []
        self.network = Network(self)
        self._lock = threading.Lock()
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._actions: dict[tuple[str, int], list[Callable[[], None]]] = defaultdict(list)

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        endpoint = request.path.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            self._counts[endpoint] += 1
            actions = self._actions.pop((endpoint, self._counts[endpoint]), [])
        for action in actions:
            action()
        at = self.sandbox.now()
        response = self.sandbox.handle(request)
        body = json.loads(request.body) if request.body.strip() else None
        seen = Seen(
            endpoint,
            request.method,
            dict(request.headers),
            dict(request.query),
            body,
            at,
            response.status,
            response.body,
            response.detail,
        )
        with self._lock:
            self.seen.append(seen)
        return response

    def before(self, endpoint: str, action: Callable[[], None], nth: int = 1) -> None:
        """Run ``action`` just before the ``nth`` request to ``endpoint`` from now is handled."""
        with self._lock:
            self._actions[(endpoint, self._counts[endpoint] + nth)].append(action)

    def sent(self, endpoint: str | None = None) -> list[Seen]:
        """The requests the sandbox received (to one endpoint, or all)."""
        return [s for s in self.seen if endpoint is None or s.endpoint == endpoint]

    @property
    def rejected(self) -> int:
        """Requests the sandbox's own rate limiter refused (injected 429s not counted)."""
        return sum(1 for s in self.seen if s.status == 429 and s.detail is None)

    def transport(self) -> httpx.BaseTransport:
        """A sync transport through the network and this wire to the sandbox."""
        return self.network

    def async_transport(self) -> httpx.AsyncBaseTransport:
        """An async transport through the network and this wire to the sandbox."""
        return self.network


class Network(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The way from a client to the sandbox: it can fail requests before they leave."""

    def __init__(self, wire: Wire) -> None:
        self._sync = SandboxTransport(wire)
        self._async = AsyncSandboxTransport(wire)
        self._failures: defaultdict[str, list[str]] = defaultdict(list)
        self.refused = 0  # requests that never left

    def unreachable(self, endpoint: str, *kinds: str) -> None:
        """Fail the next requests to ``endpoint``, one per kind: ``"connect"`` (refused)
        or ``"connect_timeout"``."""
        assert all(kind in ("connect", "connect_timeout") for kind in kinds), kinds
        self._failures[endpoint].extend(kinds)

    def _fail(self, request: httpx.Request) -> None:
        queue = self._failures.get(request.url.path.rstrip("/").rsplit("/", 1)[-1])
        if not queue:
            return
        kind = queue.pop(0)
        self.refused += 1
        if kind == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        raise httpx.ConnectTimeout("timed out connecting", request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._fail(request)
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._fail(request)
        return await self._async.handle_async_request(request)


# ---- arranging the sandbox without a request --------------------------------------------------


def _query(sandbox: Sandbox, sql: str, *args: Any) -> list[Any]:
    with sandbox.store.peek():  # the store's lock; one statement needs no transaction
        return sandbox.store._db.execute(sql, args).fetchall()


_LISTED_FREE = (
    "rented = 0 AND visible = 1 AND online = 1 AND owner != ? "
    "AND json_extract(on_demand, '$.bitcoin') IS NOT NULL "
    "AND (allowed_coins IN ('[]', 'null') "
    "     OR EXISTS (SELECT 1 FROM json_each(allowed_coins) WHERE value = 'bitcoin'))"
)


def free_server(sandbox: Sandbox, *, spot: bool = False, skip: int = 0) -> int:
    """A listed server nobody rents with bitcoin prices on demand (and on spot, with
    ``spot``), the ``skip``-th cheapest (ties by id); never one the demo user hosts."""
    table = "spot" if spot else "on_demand"
    rows = _query(
        sandbox,
        f"SELECT id FROM servers WHERE {_LISTED_FREE} "
        f"AND json_extract({table}, '$.bitcoin') IS NOT NULL "
        f"ORDER BY json_extract({table}, '$.bitcoin'), id LIMIT 1 OFFSET ?",
        user(sandbox),
        skip,
    )
    return int(rows[0][0])


def rented_server(sandbox: Sandbox) -> int:
    """A listed server another renter holds on demand."""
    rows = _query(
        sandbox, "SELECT MIN(id) FROM servers WHERE rented = 1 AND visible = 1 AND online = 1"
    )
    return int(rows[0][0])


def spot_price(sandbox: Sandbox, server_id: int) -> float:
    """The lowest spot bid ``server_id`` takes, in bitcoin per day."""
    rows = _query(
        sandbox, "SELECT json_extract(spot, '$.bitcoin') FROM servers WHERE id = ?", server_id
    )
    return float(rows[0][0])


def user(sandbox: Sandbox, api_key: str | None = None) -> int:
    """The user id behind ``api_key`` (the demo user's by default)."""
    found = sandbox.backend.authenticate(api_key or sandbox.demo_key)
    assert found is not None
    return found


def rent(
    sandbox: Sandbox,
    server_id: int | None = None,
    *,
    spot: bool = False,
    spotprice: float | None = None,
    image: str = "cloreai/ubuntu22.04-cuda12",
    api_key: str | None = None,
) -> int:
    """Rent ``server_id`` (a free one by default) as the demo user (or ``api_key``'s), on
    demand or, with ``spot``, bidding ``spotprice`` (the server's lowest by default);
    returns the new order's id."""
    sid = free_server(sandbox, spot=spot) if server_id is None else server_id
    if spot and spotprice is None:
        spotprice = spot_price(sandbox, sid)
    request = CreateOrderRequest(
        currency="bitcoin",
        image=image,
        renting_server=sid,
        type="spot" if spot else "on-demand",
        spotprice=spotprice if spot else None,
    )
    return sandbox.backend.create_order(user(sandbox, api_key), request)


def end(sandbox: Sandbox, order_id: int, api_key: str | None = None) -> None:
    """Cancel an order of the demo user (or ``api_key``'s)."""
    sandbox.backend.cancel_order(user(sandbox, api_key), CancelOrderRequest(id=order_id))


def mine(sandbox: Sandbox, api_key: str | None = None) -> list[OrderRec]:
    """Every order of the demo user (or ``api_key``'s), ended ones too, oldest first."""
    views = sandbox.backend.my_orders(user(sandbox, api_key), True)
    return [view.order for view in views]
