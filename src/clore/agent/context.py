"""``AgentContext``: what every tool call of one agent-server process shares.

The client (``clore.Clore``, synchronous), the person's policy, the audit log, the quote
book, the ledger of the orders the agent created, the person's ``confirm`` callback, and
short-lived copies of what the market says: the listing (``market_ttl``, 30 s), the
USD rates (10 minutes, from ``spot_marketplace`` as ``clore.market.cache.fetch_rates``
gets them) and the fees (10 minutes). They are kept in memory, not in the CLI's cache
file: one server process asks often and writing 2 MB per listing would cost more than it
saves.

**Threads.** The handlers are blocking (the SDK client is synchronous; a verification
takes up to a minute): an async server runs each in a worker thread
(``anyio.to_thread.run_sync``) and bridges ``confirm`` back to its event loop
(``anyio.from_thread.run``). Everything here is safe to share between those threads;
the calls that spend (quote checks, rent, cancel) hold ``mutation_lock`` so that two
concurrent rents cannot both fit under a cap that fits one.

**Secrets.** ``scrub`` replaces every secret the context knows — the client's API key,
the passwords it generated, Jupyter tokens given or generated, and ``secrets`` passed in
— in a result before it leaves (``call_tool`` scrubs every result and audit record).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from clore.agent.audit import AuditLog
from clore.agent.ledger import AgentLedger
from clore.agent.policy import AgentPolicy
from clore.agent.quotes import QuoteBook
from clore.agent.spec import ToolResult

if TYPE_CHECKING:
    from clore import Clock, Clore, RenterFees, Server
    from clore.workflows import Event

__all__ = ["AgentContext", "Confirm", "Market"]

#: ``confirm(message, details)``: True accepted, False declined, None: cannot ask.
Confirm = Callable[[str, dict[str, Any]], "bool | None"]

_RATES_TTL: Final = 600.0
_FEES_TTL: Final = 600.0
_MASK: Final = "<secret>"


@dataclass(frozen=True)
class Market:
    """The listing as fetched at ``fetched_at`` (the context's clock), with USD rates."""

    servers: list[Server]
    fetched_at: float
    rates: dict[str, float] | None
    rates_note: str | None = None

    def server(self, server_id: int) -> Server | None:
        return next((s for s in self.servers if s.id == server_id), None)


class AgentContext:
    """One per server process (see the module docstring)."""

    def __init__(
        self,
        client: Clore,
        policy: AgentPolicy,
        *,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        confirm: Confirm | None = None,
        ledger: AgentLedger | None = None,
        endpoint: str | None = None,
        market_ttl: float = 30.0,
        secrets: Iterable[str] = (),
    ) -> None:
        from clore.workflows.state import new_owner

        self.client = client
        self.policy = policy
        self.audit = audit if audit is not None else AuditLog()
        self.clock = clock
        self.confirm = confirm
        self.endpoint = endpoint or str(getattr(client, "base_url", "clore"))
        self.ledger = ledger if ledger is not None else AgentLedger(self.endpoint)
        self.quotes = QuoteBook(clock, policy.quote_ttl)
        self.market_ttl = market_ttl
        self.mutation_lock = threading.RLock()
        #: This process's rental intents are in flight while it runs (the ledger's owner).
        self.owner = new_owner()
        self._lock = threading.Lock()
        self._market: Market | None = None
        self._rates: tuple[float, dict[str, float] | None, str | None] | None = None
        self._fees: tuple[float, RenterFees] | None = None
        self._secrets: set[str] = {s for s in secrets if s}
        key = getattr(getattr(client, "_ctx", None), "api_key", None)
        if isinstance(key, str) and key:
            self._secrets.add(key)
        #: Passwords of rental intents whose order is not known yet (reconciled later).
        self.pending_logins: dict[str, str] = {}

    # ------------------------------------------------------------------ secrets

    def add_secret(self, value: str | None) -> None:
        """Never let ``value`` appear in a result or the audit log."""
        if value:
            with self._lock:
                self._secrets.add(value)

    def scrub_text(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        with self._lock:
            known = sorted(self._secrets, key=len, reverse=True)
        for secret in known:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text

    def scrub(self, value: Any) -> Any:
        """``value`` (JSON-able) with every known secret replaced in its strings."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, ToolResult):
            return ToolResult(
                data=self.scrub(value.data),
                text=self.scrub_text(value.text),
                is_error=value.is_error,
            )
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value

    # ------------------------------------------------------------------ market

    def server_time(self) -> float:
        """The API server's time (the client's estimate; no request)."""
        return float(self.client.server_time())

    def market(self, *, max_age: float | None = None, rates: bool = True) -> Market:
        """The listing, fetched when the copy is older than ``max_age`` (default
        ``market_ttl``; 0: always fetch), with the USD rates when ``rates``."""
        lifetime = self.market_ttl if max_age is None else max_age
        now = self.clock()
        with self._lock:
            held = self._market
        if held is None or not 0 <= now - held.fetched_at <= lifetime or lifetime <= 0:
            servers = list(self.client.marketplace())
            held = Market(servers, self.clock(), None)
            with self._lock:
                self._market = held
        if not rates:
            return held
        table, note = self.rates(held.servers)
        return Market(held.servers, held.fetched_at, table, note)

    def invalidate_market(self) -> None:
        """Forget the listing (a rent or cancel changed it)."""
        with self._lock:
            self._market = None

    def rates(
        self, servers: list[Server] | None = None
    ) -> tuple[dict[str, float] | None, str | None]:
        """USD rates (per unit of each currency) and why there are none."""
        from clore.market.cache import fetch_rates

        now = self.clock()
        with self._lock:
            held = self._rates
        if held is not None and 0 <= now - held[0] <= _RATES_TTL and held[1]:
            return held[1], held[2]
        listing = servers if servers is not None else self.market(rates=False).servers
        table, note = fetch_rates(self.client, listing)
        with self._lock:
            self._rates = (now, table, note or None)
        return table, note or None

    def set_rates(self, rates: dict[str, float]) -> None:
        """Remember fresh USD rates (a ``spot_marketplace`` answer carries them)."""
        if rates:
            with self._lock:
                self._rates = (self.clock(), dict(rates), None)

    def renter_fees(self) -> RenterFees:
        """The renter and creation fees (kept 10 minutes)."""
        now = self.clock()
        with self._lock:
            held = self._fees
        if held is not None and 0 <= now - held[0] <= _FEES_TTL:
            return held[1]
        fees = self.client.renter_fees()
        with self._lock:
            self._fees = (now, fees)
        return fees

    # ------------------------------------------------------------------ guards

    def enforce_limits(self, clock: Clock | None = None, *, interval: float = 60.0) -> list[Event]:
        """One pass of ``clore.workflows.guard`` over the orders this agent created: each
        is cancelled before it crosses its registered maximum time (one check ahead,
        ``interval`` seconds). A server calls this every ``interval`` seconds so that the
        maximum times hold while it runs (``clore guard --all`` holds them otherwise)."""
        from clore import SystemClock
        from clore.workflows import guard

        mine = [
            e.order_id
            for e in self.ledger.entries()
            if e.order_id is not None and not e.ended and e.status == "rented"
        ]
        if not mine:
            return []
        loop = guard(
            self.client, clock or SystemClock(), order_ids=mine, interval=interval, once=True
        )
        return list(loop)

    def close(self) -> None:
        """Release this process's hold on its rental intents (the client stays open)."""
        from clore.workflows.state import release_owner

        release_owner(self.owner)
