"""The storage interface the backend codes against (SQLite today, PostgreSQL possible).

A ``Database`` hands out transactions; a ``Repository`` is the set of reads and writes one
transaction offers. Everything the backend persists goes through these methods, so a new
store implements this file and nothing else.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from clore.sandbox.backend.records import OrderRec, ServerRec, User, WalletRec

__all__ = ["Database", "Repository"]


class Repository(Protocol):
    """Reads and writes inside one transaction."""

    # ---- meta: small named values (clock offset, schedule, revisions) -----------------
    def get_meta(self, key: str) -> str | None:
        """The value stored under ``key``, or None."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        ...

    def next_rev(self) -> int:
        """Increment and return the marketplace revision counter."""
        ...

    # ---- users and wallets -------------------------------------------------------------
    def user_by_key(self, api_key: str) -> User | None:
        """The user owning ``api_key``."""
        ...

    def caller(self, api_key: str) -> tuple[int | None, bool]:
        """(id of the user owning ``api_key``, whether any fault is queued), in one look."""
        ...

    def users_of_kind(self, kind: str) -> list[User]:
        """Every user of ``kind``."""
        ...

    def insert_user(self, user: User) -> None:
        """Add a user (its id is chosen by the caller)."""
        ...

    def update_user(self, user: User) -> None:
        """Write back a user's name and key."""
        ...

    def max_user_id(self) -> int:
        """The largest user id or server owner id in use (0 when none)."""
        ...

    def wallets_of(self, user_id: int) -> list[WalletRec]:
        """A user's wallets in currency order."""
        ...

    def get_wallet(self, user_id: int, currency: str) -> WalletRec | None:
        """One wallet."""
        ...

    def put_wallet(self, wallet: WalletRec) -> None:
        """Insert or replace a wallet."""
        ...

    def debit(self, user_id: int, currency: str, amount: float) -> None:
        """Subtract ``amount`` from a wallet's balance (the wallet must exist)."""
        ...

    # ---- servers ------------------------------------------------------------------------
    def get_server(self, server_id: int) -> ServerRec | None:
        """The server with this id."""
        ...

    def server_by_name(self, owner: int, name: str) -> ServerRec | None:
        """The server named ``name`` hosted by ``owner``."""
        ...

    def servers_of(self, owner: int) -> list[ServerRec]:
        """Servers hosted by ``owner``, in marketplace order."""
        ...

    def owned_server_ids(self, owner: int) -> list[int]:
        """Ids of the servers hosted by ``owner``, in marketplace order."""
        ...

    def insert_servers(self, servers: list[ServerRec]) -> None:
        """Add servers in bulk (seeding)."""
        ...

    def update_server(self, server: ServerRec) -> None:
        """Write back a server's mutable fields and give it a new revision."""
        ...

    def servers_changed_since(self, rev: int) -> list[ServerRec]:
        """Servers whose revision is above ``rev``, in marketplace order."""
        ...

    def server_ids(self, *, listed: bool | None = None, rented: bool | None = None) -> list[int]:
        """Ids of servers, optionally only (un)listed and/or (un)rented ones, by id."""
        ...

    def offline_server_ids(self) -> list[int]:
        """Ids of servers that are offline, by id."""
        ...

    # ---- orders -------------------------------------------------------------------------
    def insert_order(self, order: OrderRec) -> int:
        """Add an order; returns its new id (``order.id`` is ignored).

        Raises ``Conflict`` for a second live on-demand order on one server.
        """
        ...

    def insert_orders(self, orders: list[OrderRec]) -> None:
        """Add orders in bulk (seeding); new ids are assigned in list order."""
        ...

    def get_order(self, order_id: int) -> OrderRec | None:
        """The order with this id."""
        ...

    def update_order(self, order: OrderRec) -> None:
        """Write back an order's mutable fields."""
        ...

    def orders_of(self, user_id: int, *, include_ended: bool) -> list[OrderRec]:
        """A user's orders by id; live ones only unless ``include_ended``."""
        ...

    def orders_with_servers(
        self, user_id: int, *, include_ended: bool
    ) -> list[tuple[OrderRec, ServerRec]]:
        """``orders_of`` with each order's server, in one look."""
        ...

    def live_orders_on(self, server_id: int) -> list[OrderRec]:
        """Orders on a server that have not ended, by id."""
        ...

    def live_order_ids(self, user_id: int, *, spot: bool) -> list[int]:
        """Ids of a user's live on-demand orders or spot offers, by id."""
        ...

    def billing_orders(self) -> list[OrderRec]:
        """Every order that currently accrues charges."""
        ...

    def orders_due(self, t: float) -> list[OrderRec]:
        """Live orders whose end or provisioning time is at or before ``t``."""
        ...

    def next_order_event(self) -> float | None:
        """The earliest end or provisioning time among live orders."""
        ...

    # ---- public ports ------------------------------------------------------------------
    def claim_port(self, cluster: str, port: int, order_id: int) -> bool:
        """Reserve ``port`` on ``cluster`` for an order; False when it is taken."""
        ...

    def release_ports(self, order_id: int) -> None:
        """Free every port an order holds."""
        ...

    # ---- injected faults -----------------------------------------------------------------
    def add_fault(self, endpoint: str, fault: str, count: int) -> None:
        """Queue ``count`` failures of kind ``fault`` for ``endpoint``."""
        ...

    def take_fault(self, endpoint: str) -> str | None:
        """Consume and return the next queued fault for ``endpoint``."""
        ...

    def list_faults(self) -> list[tuple[str, str, int]]:
        """Queued faults as (endpoint, fault, remaining)."""
        ...

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        ...

    # ---- everything ------------------------------------------------------------------------
    def clear_all(self) -> None:
        """Delete all users, wallets, servers, orders, ports and faults (meta stays)."""
        ...


class Database(Protocol):
    """A database: transactions over a ``Repository``.

    A transaction that cannot proceed (database locked, busy, failing) raises the
    domain's code-1 ``ApiError`` (``database_error``) after rolling back.
    """

    def write(self) -> AbstractContextManager[Repository]:
        """A serialized read-write transaction, committed on success, rolled back on error."""
        ...

    def read(self) -> AbstractContextManager[Repository]:
        """A consistent read-only snapshot."""
        ...

    def peek(self) -> AbstractContextManager[Repository]:
        """Reads that need no snapshot (a single statement)."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...
