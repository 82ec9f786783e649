"""SQL of the SQLite store: ``SqliteRepository`` and the row <-> record mappings."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from clore.sandbox.backend.errors import Conflict
from clore.sandbox.backend.records import OrderRec, ServerRec, User, WalletRec
from clore.sandbox.held import HELD_KEY

__all__ = ["SqliteRepository"]

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode

_SERVER_COLUMNS = (
    "id, owner, name, pos, record, mrl, on_demand, spot, allowed_coins, rented, visible, "
    "online, end_outbid, cluster, rev"
)
_ORDER_FIELDS = (
    "user_id, server_id, spot, currency, price, fee_rate, image, ct, mrl, end_at, "
    "creation_fee, billed_until, ports, spend, ended, ended_at, end_reason, issue, billing, "
    "active, ready_at, provisioned, pub_cluster, tcp_ports, http_port, http_pub, "
    "last_lowered, extra"
)
_ORDER_COLUMNS = "id, " + _ORDER_FIELDS
_ORDER_WIDTH = 29
_WITH_SERVERS = {
    ended: (
        "SELECT "
        + ", ".join(f"o.{c.strip()}" for c in _ORDER_COLUMNS.split(","))
        + ", "
        + ", ".join(f"s.{c.strip()}" for c in _SERVER_COLUMNS.split(","))
        + " FROM orders AS o JOIN servers AS s ON s.id = o.server_id WHERE o.user_id = ?"
        + ("" if ended else " AND o.ended = 0")
        + " ORDER BY o.id"
    )
    for ended in (False, True)
}
_ORDER_INSERT = f"INSERT INTO orders ({_ORDER_FIELDS}) VALUES ({', '.join('?' * 28)})"
_ORDER_UPDATE = (
    "UPDATE orders SET "
    + ", ".join(f"{name.strip()} = ?" for name in _ORDER_FIELDS.split(","))
    + " WHERE id = ?"
)


def _server(row: Any) -> ServerRec:
    return ServerRec(
        id=row[0],
        owner=row[1],
        name=row[2],
        pos=row[3],
        record=bytes(row[4]),
        mrl=row[5],
        on_demand=_json_decode(row[6]),
        spot=_json_decode(row[7]),
        allowed_coins=_json_decode(row[8]),
        rented=bool(row[9]),
        visible=bool(row[10]),
        online=bool(row[11]),
        end_outbid=bool(row[12]),
        cluster=row[13],
        rev=row[14],
    )


def _server_values(s: ServerRec) -> tuple[Any, ...]:
    return (
        s.id,
        s.owner,
        s.name,
        s.pos,
        s.record,
        s.mrl,
        _json_encode(s.on_demand).decode(),
        _json_encode(s.spot).decode(),
        _json_encode(s.allowed_coins).decode(),
        int(s.rented),
        int(s.visible),
        int(s.online),
        int(s.end_outbid),
        s.cluster,
        s.rev,
    )


def _order(row: Any) -> OrderRec:
    return OrderRec(
        id=row[0],
        user_id=row[1],
        server_id=row[2],
        spot=bool(row[3]),
        currency=row[4],
        price=row[5],
        fee_rate=row[6],
        image=row[7],
        ct=row[8],
        mrl=row[9],
        end_at=row[10],
        creation_fee=row[11],
        billed_until=row[12],
        ports=_json_decode(row[13]),
        spend=row[14],
        ended=bool(row[15]),
        ended_at=row[16],
        end_reason=row[17],
        issue=row[18],
        billing=bool(row[19]),
        active=bool(row[20]),
        ready_at=row[21],
        provisioned=bool(row[22]),
        pub_cluster=_json_decode(row[23]),
        tcp_ports=_json_decode(row[24]),
        http_port=row[25],
        http_pub=row[26],
        last_lowered=row[27],
        extra=_json_decode(row[28]),
    )


def _order_values(o: OrderRec) -> tuple[Any, ...]:
    return (
        o.user_id,
        o.server_id,
        int(o.spot),
        o.currency,
        o.price,
        o.fee_rate,
        o.image,
        o.ct,
        o.mrl,
        o.end_at,
        o.creation_fee,
        o.billed_until,
        _json_encode(o.ports).decode(),
        o.spend,
        int(o.ended),
        o.ended_at,
        o.end_reason,
        o.issue,
        int(o.billing),
        int(o.active),
        o.ready_at,
        int(o.provisioned),
        _json_encode(o.pub_cluster).decode(),
        _json_encode(o.tcp_ports).decode(),
        o.http_port,
        o.http_pub,
        o.last_lowered,
        _json_encode(o.extra).decode(),
    )


class SqliteRepository:
    """The ``Repository`` methods over one SQLite connection (inside a transaction)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    # ---- meta ---------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def next_rev(self) -> int:
        rev = int(self.get_meta("rev") or 0) + 1
        self.set_meta("rev", str(rev))
        return rev

    # ---- users and wallets ----------------------------------------------------------------
    def user_by_key(self, api_key: str) -> User | None:
        row = self._db.execute(
            "SELECT id, name, api_key, kind, created FROM users WHERE api_key = ?", (api_key,)
        ).fetchone()
        return None if row is None else User(*row)

    def caller(self, api_key: str) -> tuple[int | None, bool]:
        row = self._db.execute(
            "SELECT (SELECT id FROM users WHERE api_key = ?), EXISTS (SELECT 1 FROM faults)",
            (api_key,),
        ).fetchone()
        return row[0], bool(row[1])

    def users_of_kind(self, kind: str) -> list[User]:
        rows = self._db.execute(
            "SELECT id, name, api_key, kind, created FROM users WHERE kind = ? ORDER BY id",
            (kind,),
        )
        return [User(*row) for row in rows]

    def insert_user(self, user: User) -> None:
        self._db.execute(
            "INSERT INTO users (id, name, api_key, kind, created) VALUES (?, ?, ?, ?, ?)",
            (user.id, user.name, user.api_key, user.kind, user.created),
        )

    def update_user(self, user: User) -> None:
        self._db.execute(
            "UPDATE users SET name = ?, api_key = ? WHERE id = ?",
            (user.name, user.api_key, user.id),
        )

    def max_user_id(self) -> int:
        row = self._db.execute(
            "SELECT MAX(m) FROM (SELECT MAX(id) AS m FROM users "
            "UNION ALL SELECT MAX(owner) FROM servers)"
        ).fetchone()
        return int(row[0] or 0)

    def wallets_of(self, user_id: int) -> list[WalletRec]:
        rows = self._db.execute(
            "SELECT user_id, currency, balance, deposit, withdrawal_fee FROM wallets "
            "WHERE user_id = ? ORDER BY rowid",
            (user_id,),
        )
        return [WalletRec(*row) for row in rows]

    def get_wallet(self, user_id: int, currency: str) -> WalletRec | None:
        row = self._db.execute(
            "SELECT user_id, currency, balance, deposit, withdrawal_fee FROM wallets "
            "WHERE user_id = ? AND currency = ?",
            (user_id, currency),
        ).fetchone()
        return None if row is None else WalletRec(*row)

    def put_wallet(self, wallet: WalletRec) -> None:
        self._db.execute(
            "INSERT INTO wallets (user_id, currency, balance, deposit, withdrawal_fee) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, currency) DO UPDATE SET "
            "balance = excluded.balance, deposit = excluded.deposit, "
            "withdrawal_fee = excluded.withdrawal_fee",
            (
                wallet.user_id,
                wallet.currency,
                wallet.balance,
                wallet.deposit,
                wallet.withdrawal_fee,
            ),
        )

    def debit(self, user_id: int, currency: str, amount: float) -> None:
        self._db.execute(
            "UPDATE wallets SET balance = balance - ? WHERE user_id = ? AND currency = ?",
            (amount, user_id, currency),
        )

    # ---- servers -------------------------------------------------------------------------
    def get_server(self, server_id: int) -> ServerRec | None:
        row = self._db.execute(
            f"SELECT {_SERVER_COLUMNS} FROM servers WHERE id = ?",
            (server_id,),
        ).fetchone()
        return None if row is None else _server(row)

    def server_by_name(self, owner: int, name: str) -> ServerRec | None:
        row = self._db.execute(
            f"SELECT {_SERVER_COLUMNS} FROM servers WHERE owner = ? AND name = ?",
            (owner, name),
        ).fetchone()
        return None if row is None else _server(row)

    def servers_of(self, owner: int) -> list[ServerRec]:
        rows = self._db.execute(
            f"SELECT {_SERVER_COLUMNS} FROM servers WHERE owner = ? ORDER BY pos",
            (owner,),
        )
        return [_server(row) for row in rows]

    def owned_server_ids(self, owner: int) -> list[int]:
        rows = self._db.execute("SELECT id FROM servers WHERE owner = ? ORDER BY pos", (owner,))
        return [int(row[0]) for row in rows]

    def insert_servers(self, servers: list[ServerRec]) -> None:
        self._db.executemany(
            f"INSERT INTO servers ({_SERVER_COLUMNS}) VALUES ({', '.join('?' * 15)})",
            [_server_values(s) for s in servers],
        )

    def update_server(self, server: ServerRec) -> None:
        server.rev = self.next_rev()
        values = _server_values(server)
        self._db.execute(
            "UPDATE servers SET owner = ?, name = ?, pos = ?, record = ?, mrl = ?, "
            "on_demand = ?, spot = ?, allowed_coins = ?, rented = ?, visible = ?, online = ?, "
            "end_outbid = ?, cluster = ?, rev = ? WHERE id = ?",
            (*values[1:], server.id),
        )

    def servers_changed_since(self, rev: int) -> list[ServerRec]:
        rows = self._db.execute(
            f"SELECT {_SERVER_COLUMNS} FROM servers WHERE rev > ? ORDER BY pos",
            (rev,),
        )
        return [_server(row) for row in rows]

    def server_ids(self, *, listed: bool | None = None, rented: bool | None = None) -> list[int]:
        where = []
        if listed is True:
            where.append("visible = 1 AND online = 1")
        elif listed is False:
            where.append("NOT (visible = 1 AND online = 1)")
        if rented is not None:
            where.append(f"rented = {int(rented)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.execute(f"SELECT id FROM servers{clause} ORDER BY id")
        return [int(row[0]) for row in rows]

    def offline_server_ids(self) -> list[int]:
        rows = self._db.execute("SELECT id FROM servers WHERE online = 0 ORDER BY id")
        return [int(row[0]) for row in rows]

    # ---- orders --------------------------------------------------------------------------
    def insert_order(self, order: OrderRec) -> int:
        try:
            cursor = self._db.execute(_ORDER_INSERT, _order_values(order))
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc
        order.id = int(cursor.lastrowid or 0)
        return order.id

    def insert_orders(self, orders: list[OrderRec]) -> None:
        self._db.executemany(_ORDER_INSERT, [_order_values(o) for o in orders])

    def get_order(self, order_id: int) -> OrderRec | None:
        row = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ?",
            (order_id,),
        ).fetchone()
        return None if row is None else _order(row)

    def update_order(self, order: OrderRec) -> None:
        self._db.execute(_ORDER_UPDATE, (*_order_values(order), order.id))

    def orders_of(self, user_id: int, *, include_ended: bool) -> list[OrderRec]:
        live = "" if include_ended else " AND ended = 0"
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE user_id = ?{live} ORDER BY id",
            (user_id,),
        )
        return [_order(row) for row in rows]

    def orders_with_servers(
        self, user_id: int, *, include_ended: bool
    ) -> list[tuple[OrderRec, ServerRec]]:
        rows = self._db.execute(_WITH_SERVERS[include_ended], (user_id,))
        return [(_order(row[:_ORDER_WIDTH]), _server(row[_ORDER_WIDTH:])) for row in rows]

    def live_orders_on(self, server_id: int) -> list[OrderRec]:
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE server_id = ? AND ended = 0 ORDER BY id",
            (server_id,),
        )
        return [_order(row) for row in rows]

    def live_order_ids(self, user_id: int, *, spot: bool) -> list[int]:
        rows = self._db.execute(
            "SELECT id FROM orders WHERE user_id = ? AND spot = ? AND ended = 0 ORDER BY id",
            (user_id, int(spot)),
        )
        return [int(row[0]) for row in rows]

    def billing_orders(self) -> list[OrderRec]:
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE billing = 1 ORDER BY id"
        )
        return [_order(row) for row in rows]

    def orders_due(self, t: float) -> list[OrderRec]:
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id IN ("
            "SELECT id FROM orders WHERE ended = 0 AND end_at <= ? UNION "
            "SELECT id FROM orders WHERE ended = 0 AND provisioned = 0 "
            "AND ready_at IS NOT NULL AND ready_at <= ?) ORDER BY id",
            (t, t),
        )
        return [_order(row) for row in rows]

    def next_order_event(self) -> float | None:
        row = self._db.execute(
            "SELECT MIN(t) FROM ("
            "SELECT MIN(end_at) AS t FROM orders WHERE ended = 0 UNION ALL "
            "SELECT MIN(ready_at) FROM orders WHERE ended = 0 AND provisioned = 0 "
            "AND ready_at IS NOT NULL)"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    # ---- ports ---------------------------------------------------------------------------
    def claim_port(self, cluster: str, port: int, order_id: int) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO ports (cluster, port, order_id) VALUES (?, ?, ?)",
            (cluster, port, order_id),
        )
        return cursor.rowcount == 1

    def release_ports(self, order_id: int) -> None:
        self._db.execute("DELETE FROM ports WHERE order_id = ?", (order_id,))

    # ---- faults --------------------------------------------------------------------------
    def add_fault(self, endpoint: str, fault: str, count: int) -> None:
        self._db.execute(
            "INSERT INTO faults (endpoint, fault, remaining) VALUES (?, ?, ?)",
            (endpoint, fault, count),
        )

    def take_fault(self, endpoint: str) -> str | None:
        row = self._db.execute(
            "SELECT id, fault FROM faults WHERE endpoint = ? AND remaining > 0 ORDER BY id LIMIT 1",
            (endpoint,),
        ).fetchone()
        if row is None:
            return None
        self._db.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row[0],))
        self._db.execute("DELETE FROM faults WHERE remaining <= 0")
        return str(row[1])

    def list_faults(self) -> list[tuple[str, str, int]]:
        rows = self._db.execute("SELECT endpoint, fault, remaining FROM faults ORDER BY id")
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def clear_faults(self) -> None:
        # The requests late_commit faults hold back go with the faults.
        self._db.execute("DELETE FROM faults")
        self._db.execute("DELETE FROM meta WHERE key = ?", (HELD_KEY,))

    # ---- everything ------------------------------------------------------------------------
    def clear_all(self) -> None:
        for table in ("users", "wallets", "servers", "orders", "ports", "faults"):
            self._db.execute(f"DELETE FROM {table}")
        self._db.execute("DELETE FROM meta WHERE key = ?", (HELD_KEY,))
