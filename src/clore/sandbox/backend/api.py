"""``Backend``: one method per endpoint, each one transaction at one instant."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from msgspec import UNSET, UnsetType

from clore._wire import CancelOrderRequest, CreateOrderRequest, SetSpotPriceRequest
from clore.sandbox.backend import accounts, hosts, market, market_sim, orders, spot
from clore.sandbox.backend.accounts import new_api_key
from clore.sandbox.backend.errors import invalid_input
from clore.sandbox.backend.lifecycle import rerank
from clore.sandbox.backend.machines import (
    DELIVERS_META,
    Endpoints,
    all_delivers,
    machine_wanted,
    set_delivers,
)
from clore.sandbox.backend.records import (
    MarketplaceView,
    OrderRec,
    OrderView,
    ServerRec,
    SpotMarketView,
    User,
    WalletRec,
)
from clore.sandbox.backend.repository import Database, Repository
from clore.sandbox.backend.seed import SeedRecords, seed
from clore.sandbox.backend.settle import schedule, settle
from clore.sandbox.backend.validate import check_id

__all__ = ["Backend", "MachineOrder"]

T = TypeVar("T")


@dataclass(frozen=True)
class MachineOrder:
    """An order that should have a running machine, with its server and what the server's
    host delivers (the fields that differ from the listing)."""

    order: OrderRec
    server: ServerRec
    delivers: dict[str, Any]


class Backend:
    """The API's behaviour over a ``Database``, at the times ``now()`` returns."""

    def __init__(
        self,
        store: Database,
        now: Callable[[], float],
        *,
        market_activity: float = 0.0,
        rng_seed: int = 0,
        endpoints: Endpoints | None = None,
    ) -> None:
        self.store = store
        self.now = now
        self.market_activity = max(0.0, float(market_activity))
        self.rng_seed = rng_seed
        self.endpoints = endpoints
        #: Counts write transactions (the machines resync when it moved).
        self.writes = 0
        #: Called with each new order's id and request, after it is committed.
        self.on_created: Callable[[int, CreateOrderRequest], None] | None = None
        self._ticker = functools.partial(_tick, rng_seed=rng_seed)

    # ---- transactions ---------------------------------------------------------------
    def _settle(self, repo: Repository, now: float) -> list[str]:
        return settle(repo, now, self.market_activity, self._ticker, self.endpoints)

    def _write(self, action: Callable[[Repository, float], T]) -> T:
        try:
            with self.store.write() as repo:
                # Read the clock inside the lock, so transactions see time in their order.
                now = self.now()
                self._settle(repo, now)
                result = action(repo, now)
                schedule(repo, self.market_activity)
                # Simulated time never runs backwards across restarts (see SimClock's start).
                repo.set_meta("clock_high", repr(now))
                return result
        finally:
            self._wrote()

    def _wrote(self) -> None:
        # After the commit (or rollback): whoever sees the new count sees what was written.
        self.writes += 1

    def _read(self, action: Callable[[Repository, float], T]) -> T:
        # Reads run statement by statement (no snapshot): within this process the store's
        # lock makes them atomic anyway, and across processes a read that straddles
        # another's commit shows each row as it was committed, which is all a poll needs.
        with self.store.peek() as repo:
            now = self.now()
            due = repo.get_meta("next_due")
            if due is not None and float(due) > now:
                # Nothing is due: answer without taking the write lock.
                return action(repo, now)
        try:
            with self.store.write() as repo:
                now = self.now()
                self._settle(repo, now)
                return action(repo, now)
        finally:
            self._wrote()

    # ---- public API -------------------------------------------------------------------
    def authenticate(self, api_key: str) -> int | None:
        """The user id behind ``api_key``, or None."""
        with self.store.read() as repo:
            return accounts.authenticate(repo, api_key)

    def admit(self, endpoint: str, api_key: str) -> tuple[str | None, int | None]:
        """One look before a call: (the injected fault it consumes, the caller's user id)."""
        with self.store.peek() as repo:
            user_id, faults = accounts.caller(repo, api_key)
            if not faults:
                return None, user_id
        with self.store.write() as repo:
            return repo.take_fault(endpoint), user_id

    def marketplace(self, user_id: int | None, since: int) -> MarketplaceView:
        """Servers changed since revision ``since`` and the caller's own server ids."""
        return self._read(lambda repo, now: market.marketplace(repo, user_id, since))

    def spot_marketplace(self, user_id: int | None, server_id: int) -> SpotMarketView | None:
        """Offers on ``server_id``; None when there is no such public server."""
        return self._read(lambda repo, now: spot.spot_marketplace(repo, user_id, server_id))

    def my_orders(self, user_id: int, include_completed: bool) -> list[OrderView]:
        """The caller's orders as of now."""
        return self._read(
            lambda repo, now: orders.my_orders(
                repo, now, user_id, include_completed=include_completed
            )
        )

    def create_order(self, user_id: int, req: CreateOrderRequest) -> int:
        """Rent or bid; returns the new order id (the API itself does not return it).

        ``on_created`` then sees the request: the machines keep its SSH password and key,
        which the database never holds."""
        order_id = self._write(lambda repo, now: orders.create_order(repo, now, user_id, req))
        if self.on_created is not None:
            self.on_created(order_id, req)
        return order_id

    def cancel_order(self, user_id: int, req: CancelOrderRequest) -> None:
        """End one of the caller's orders."""
        self._write(lambda repo, now: orders.cancel_order(repo, now, user_id, req))

    def set_spot_price(self, user_id: int, req: SetSpotPriceRequest) -> None:
        """Change the bid of one of the caller's spot offers."""
        self._write(lambda repo, now: spot.set_spot_price(repo, now, user_id, req))

    def wallets(self, user_id: int) -> list[WalletRec]:
        """The caller's wallets with current balances."""
        return self._read(lambda repo, now: accounts.wallets(repo, now, user_id))

    def my_servers(self, user_id: int) -> list[ServerRec]:
        """The servers the caller hosts."""
        return self._read(lambda repo, now: hosts.my_servers(repo, user_id))

    def server_config(self, user_id: int, name: str) -> tuple[ServerRec, int]:
        """The caller's server named ``name`` and its rental status (0/1/2)."""
        return self._read(lambda repo, now: hosts.server_config(repo, user_id, name))

    def set_server_settings(self, user_id: int, body: Mapping[str, Any]) -> None:
        """Change visibility, prices, currencies or mrl of one of the caller's servers."""
        self._write(lambda repo, now: hosts.set_server_settings(repo, now, user_id, body))

    def renter_fees(self) -> dict[str, Any]:
        """Fee tables."""
        return market.renter_fees()

    def poh_balance(self, user_id: int) -> float:
        """Proof-of-holding balance: the sandbox has no staking, so always 0."""
        return 0.0

    # ---- lifecycle of the whole sandbox ----------------------------------------------------
    def seed_source(self) -> str | None:
        """The seed the database was created from ("snapshot", a path, or None)."""
        with self.store.read() as repo:
            source = repo.get_meta("seed_source")
        return None if source in (None, "", "none") else source

    def meta(self, key: str) -> str | None:
        """A stored meta value (clock offset and the like)."""
        with self.store.read() as repo:
            return repo.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        """Store a meta value."""
        with self.store.write() as repo:
            repo.set_meta(key, value)

    def initialize(
        self, records: Callable[[], SeedRecords], source: str | None, demo_key: str | None
    ) -> bool:
        """Seed an empty database (True) or open a seeded one, applying ``demo_key``."""
        with self.store.write() as repo:
            now = self.now()
            if not repo.get_meta("seeded"):
                key = demo_key or new_api_key()
                seed(repo, records(), now, rng_seed=self.rng_seed, demo_key=key)
                repo.set_meta("seed_source", source or "none")
                schedule(repo, self.market_activity)
                return True
            if demo_key is not None:
                demo = self._demo(repo)
                if demo.api_key != demo_key:
                    other = repo.user_by_key(demo_key)
                    if other is not None and other.id != demo.id:
                        raise ValueError("demo key is already another user's key")
                    demo.api_key = demo_key
                    repo.update_user(demo)
            return False

    def reset(self, records: SeedRecords) -> None:
        """Back to the seed state; the demo user keeps its key."""
        try:
            self._reset(records)
        finally:
            self._wrote()

    def _reset(self, records: SeedRecords) -> None:
        with self.store.write() as repo:
            now = self.now()
            key = self._demo(repo).api_key or new_api_key()
            repo.clear_all()
            for name in ("next_due", "market_ticks", "demo_user", "seeded", DELIVERS_META):
                repo.set_meta(name, "")
            seed(repo, records, now, rng_seed=self.rng_seed, demo_key=key)
            repo.set_meta("clock_high", repr(now))
            if self.market_activity > 0:
                repo.set_meta("market_last", repr(now))
            schedule(repo, self.market_activity)

    def demo_key(self) -> str:
        """The demo user's API key."""
        with self.store.read() as repo:
            return self._demo(repo).api_key or ""

    @staticmethod
    def _demo(repo: Repository) -> User:
        demo = repo.users_of_kind("demo")
        if not demo:
            raise RuntimeError("the sandbox database has no demo user")
        return demo[0]

    # ---- control plane -----------------------------------------------------------------
    def settle(self) -> list[str]:
        """Bring the state up to now (after the clock moved); returns market events run."""
        return self._write(lambda repo, now: self._settle(repo, now))

    def settle_due(self) -> bool:
        """Settle when an event is due by now (a timer's step); True when it did."""
        with self.store.peek() as repo:
            due = repo.get_meta("next_due")
            if due is not None and due != "" and float(due) > self.now():
                return False
        self.settle()
        return True

    # ---- machines ------------------------------------------------------------------------
    def machine_orders(self) -> list[MachineOrder]:
        """Every order that should have a running machine now (``machine_wanted``)."""
        with self.store.read() as repo:
            wanted = [o for o in repo.billing_orders() if machine_wanted(o)]
            if not wanted:
                return []
            delivers = all_delivers(repo)
            out = []
            for order in wanted:
                server = repo.get_server(order.server_id)
                if server is not None:
                    out.append(MachineOrder(order, server, delivers.get(server.id, {})))
            return out

    def order_record(self, order_id: int) -> OrderRec | None:
        """The stored order ``order_id`` (anyone's), or None."""
        with self.store.read() as repo:
            return repo.get_order(check_id(order_id, "order"))

    def set_endpoints(
        self, order_id: int, host: str, tcp_ports: list[str], http_pub: str | None
    ) -> None:
        """Record where an order's machine really listens (when the ports it was given at
        provisioning were taken by the time it started, or another process names its
        host otherwise)."""

        def action(repo: Repository, now: float) -> None:
            order = repo.get_order(order_id)
            if order is not None and not order.ended:
                order.pub_cluster = [host]
                order.tcp_ports = list(tcp_ports)
                order.http_pub = http_pub
                repo.update_order(order)

        self._write(action)

    def server_delivers(self, server_id: int) -> dict[str, Any]:
        """What ``server_id``'s host delivers instead of its listing ({} when honest)."""
        with self.store.read() as repo:
            return all_delivers(repo).get(server_id, {})

    def create_user(
        self, name: str, balances: Mapping[str, float], servers: list[int] | None = None
    ) -> User:
        """Add a user with funded wallets, optionally taking over hosting of ``servers``."""

        def action(repo: Repository, now: float) -> User:
            user = accounts.create_user(repo, now, name, balances)
            for server_id in servers or []:
                server = repo.get_server(check_id(server_id, "servers"))
                if server is None:
                    raise invalid_input(f"servers: no server {server_id}")
                server.owner = user.id
                repo.update_server(server)
            return user

        return self._write(action)

    def set_server(
        self,
        server_id: int,
        *,
        price: Mapping[str, Any] | None = None,
        rented: bool | None = None,
        online: bool | None = None,
        visible: bool | None = None,
        end_outbid: bool | None = None,
        delivers: Mapping[str, Any] | UnsetType | None = UNSET,
    ) -> None:
        """Change a server as its host or the market would; ``delivers`` (merged; None
        clears) changes what its machines report, never its listing."""

        def action(repo: Repository, now: float) -> None:
            server = repo.get_server(check_id(server_id, "server"))
            if server is None:
                raise invalid_input(f"server: no server {server_id}")
            if not isinstance(delivers, UnsetType):
                set_delivers(repo, server.id, delivers)
            if price is not None:
                hosts.apply_prices(server, price)
            if online is not None:
                server.online = online
            if visible is not None:
                server.visible = visible
            if end_outbid is not None:
                server.end_outbid = end_outbid
            repo.update_server(server)
            rerank(repo, server, now)
            if rented is not None:
                hosts.set_rented(repo, now, server, rented)

        self._write(action)

    def market_tick(self, count: int = 1) -> list[str]:
        """Run ``count`` market events now; returns what happened."""
        return self._write(
            lambda repo, now: [_tick(repo, now, rng_seed=self.rng_seed) for _ in range(count)]
        )

    def start_market(self) -> None:
        """Start the background market from now (ticks do not replay downtime)."""
        if self.market_activity > 0:
            self._write(lambda repo, now: repo.set_meta("market_last", repr(now)))

    def add_fault(self, endpoint: str, fault: str, count: int) -> None:
        """Queue ``count`` failures of ``endpoint``."""
        with self.store.write() as repo:
            repo.add_fault(endpoint, fault, count)

    def faults(self) -> list[tuple[str, str, int]]:
        """Queued faults."""
        with self.store.read() as repo:
            return repo.list_faults()

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self.store.write() as repo:
            repo.clear_faults()


def _tick(repo: Repository, t: float, *, rng_seed: int) -> str:
    return market_sim.tick(repo, t, rng_seed)
