"""A client on the in-process sandbox with hooks around chosen requests, and arranging the
sandbox without a request.

``Hooks`` is the sandbox's request handler with actions a test registers to run just
before the n-th request to an endpoint is handled (``before``), or just after it was
answered (``after``: a slow way back), so one SDK call can meet a changing world; it
records when each request reached the sandbox. ``listing``, ``free_servers``,
``lowest_spot_bid``, ``demo_user`` and ``rent_directly`` read and change the sandbox
through its backend, so no rate-limit window moves. The API's rules stay the sandbox's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from clore import Clore, Pacing
from clore._wire import CreateOrderRequest
from clore.sandbox import BASE_URL, Sandbox
from clore.sandbox.backend.records import ServerRec
from clore.sandbox.dispatch import SandboxRequest, SandboxResponse
from clore.sandbox.transport import SandboxTransport

__all__ = [
    "IMAGE",
    "Hooks",
    "demo_user",
    "free_servers",
    "hooked_client",
    "listing",
    "lowest_spot_bid",
    "rent_directly",
]

IMAGE = "cloreai/ubuntu22.04-cuda12"


class Hooks:
    """The sandbox's request handler, with actions around chosen requests (see the module)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.seen: list[tuple[str, float]] = []
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._before: dict[tuple[str, int], Callable[[], None]] = {}
        self._after: dict[tuple[str, int], Callable[[], None]] = {}

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        endpoint = request.path.rstrip("/").rsplit("/", 1)[-1]
        self._counts[endpoint] += 1
        key = (endpoint, self._counts[endpoint])
        if (action := self._before.pop(key, None)) is not None:
            action()
        self.seen.append((endpoint, self.sandbox.now()))
        response = self.sandbox.handle(request)
        if (action := self._after.pop(key, None)) is not None:
            action()
        return response

    def before(self, endpoint: str, nth: int, action: Callable[[], None]) -> None:
        """Run ``action`` just before the ``nth`` request to ``endpoint`` from now on."""
        self._before[(endpoint, self._counts[endpoint] + nth)] = action

    def after(self, endpoint: str, nth: int, action: Callable[[], None]) -> None:
        """Run ``action`` once the ``nth`` request to ``endpoint`` from now on is answered,
        before the answer reaches the client."""
        self._after[(endpoint, self._counts[endpoint] + nth)] = action

    def sent(self, endpoint: str) -> list[float]:
        """The sandbox times at which ``endpoint`` was asked."""
        return [at for name, at in self.seen if name == endpoint]


def hooked_client(sandbox: Sandbox, hooks: Hooks, pacing: Pacing | None = None) -> Clore:
    """A Clore acting as the demo user through ``hooks``, on the sandbox's clock."""
    return Clore(
        sandbox.demo_key,
        base_url=BASE_URL,
        transport=SandboxTransport(hooks),
        clock=sandbox.clock,
        pacing=pacing,
    )


def listing(sandbox: Sandbox) -> list[ServerRec]:
    """The sandbox's servers, read without a request."""
    return sandbox.backend.marketplace(None, 0).changed


def demo_user(sandbox: Sandbox) -> int:
    """The demo user's id."""
    user = sandbox.backend.authenticate(sandbox.demo_key)
    assert user is not None
    return user


def free_servers(sandbox: Sandbox, *, spot: bool = False) -> list[int]:
    """Listed servers nobody rents, not the demo user's, that take bitcoin (on demand, or on
    spot with ``spot``), cheapest first."""
    user = demo_user(sandbox)
    table = "spot" if spot else "on_demand"
    free = [
        s
        for s in listing(sandbox)
        if s.listed
        and not s.rented
        and s.owner != user
        and "bitcoin" in getattr(s, table)
        and (not s.allowed_coins or "bitcoin" in s.allowed_coins)
    ]
    return [s.id for s in sorted(free, key=lambda s: (getattr(s, table)["bitcoin"], s.id))]


def lowest_spot_bid(sandbox: Sandbox, server_id: int) -> float:
    """The lowest bid ``server_id`` takes on spot, in bitcoin per day."""
    (server,) = [s for s in listing(sandbox) if s.id == server_id]
    return float(server.spot["bitcoin"])


def rent_directly(
    sandbox: Sandbox, server_id: int, *, spotprice: float | None = None, user: int | None = None
) -> int:
    """An order placed without a request (another session): the demo user's (or ``user``'s),
    on demand, or a spot bid of ``spotprice``; returns its id."""
    request = CreateOrderRequest(
        currency="bitcoin",
        image=IMAGE,
        renting_server=server_id,
        type="on-demand" if spotprice is None else "spot",
        spotprice=spotprice,
    )
    return sandbox.backend.create_order(demo_user(sandbox) if user is None else user, request)
