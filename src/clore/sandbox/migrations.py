"""The sandbox database schema as an ordered list of migrations.

``PRAGMA user_version`` records how many have run; ``migrate`` runs the rest, each in its
own transaction. Append new functions; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "migrate"]


def _initial_schema(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            api_key TEXT UNIQUE,
            kind TEXT NOT NULL,
            created REAL NOT NULL
        );

        CREATE TABLE wallets (
            user_id INTEGER NOT NULL,
            currency TEXT NOT NULL,
            balance REAL NOT NULL,
            deposit TEXT NOT NULL,
            withdrawal_fee REAL NOT NULL,
            PRIMARY KEY (user_id, currency)
        );

        CREATE TABLE servers (
            id INTEGER PRIMARY KEY,
            owner INTEGER NOT NULL,
            name TEXT NOT NULL UNIQUE,
            pos INTEGER NOT NULL,
            record BLOB NOT NULL,
            mrl REAL NOT NULL,
            on_demand TEXT NOT NULL,
            spot TEXT NOT NULL,
            allowed_coins TEXT NOT NULL,
            rented INTEGER NOT NULL,
            visible INTEGER NOT NULL,
            online INTEGER NOT NULL,
            end_outbid INTEGER NOT NULL,
            cluster TEXT NOT NULL,
            rev INTEGER NOT NULL
        );
        CREATE INDEX servers_owner ON servers (owner, pos);
        CREATE INDEX servers_rev ON servers (rev);

        CREATE TABLE orders (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL,
            server_id INTEGER NOT NULL,
            spot INTEGER NOT NULL,
            currency TEXT NOT NULL,
            price REAL NOT NULL,
            fee_rate REAL NOT NULL,
            image TEXT NOT NULL,
            ct REAL NOT NULL,
            mrl REAL NOT NULL,
            end_at REAL NOT NULL,
            creation_fee REAL NOT NULL,
            billed_until REAL NOT NULL,
            ports TEXT NOT NULL,
            spend REAL NOT NULL,
            ended INTEGER NOT NULL,
            ended_at REAL,
            end_reason TEXT,
            issue TEXT,
            billing INTEGER NOT NULL,
            active INTEGER NOT NULL,
            ready_at REAL,
            provisioned INTEGER NOT NULL,
            pub_cluster TEXT NOT NULL,
            tcp_ports TEXT NOT NULL,
            http_port TEXT,
            http_pub TEXT,
            last_lowered REAL,
            extra TEXT NOT NULL
        );
        CREATE INDEX orders_user ON orders (user_id, id);
        CREATE INDEX orders_live_server ON orders (server_id) WHERE ended = 0;
        -- The database itself refuses a second running on-demand order on one server.
        CREATE UNIQUE INDEX orders_one_on_demand ON orders (server_id)
            WHERE ended = 0 AND spot = 0;
        CREATE INDEX orders_end ON orders (end_at) WHERE ended = 0;
        CREATE INDEX orders_ready ON orders (ready_at)
            WHERE ended = 0 AND provisioned = 0 AND ready_at IS NOT NULL;
        CREATE INDEX orders_billing ON orders (user_id) WHERE billing = 1;

        CREATE TABLE ports (
            cluster TEXT NOT NULL,
            port INTEGER NOT NULL,
            order_id INTEGER NOT NULL,
            PRIMARY KEY (cluster, port)
        );
        CREATE INDEX ports_order ON ports (order_id);

        CREATE TABLE faults (
            id INTEGER PRIMARY KEY,
            endpoint TEXT NOT NULL,
            fault TEXT NOT NULL,
            remaining INTEGER NOT NULL
        );
        CREATE INDEX faults_endpoint ON faults (endpoint, id);
        """,
    )


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the surrounding transaction first; run one by one.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_initial_schema]


def migrate(db: sqlite3.Connection) -> None:
    """Bring ``db`` (a connection in autocommit mode) up to the newest schema."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated between our read and the lock.
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current >= number:
                db.execute("ROLLBACK")
                continue
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
