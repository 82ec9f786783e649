"""The history database: marketplace snapshots in SQLite, stored change-only.

Three tables hold everything (schema version 1, in ``meta``):

* ``snapshots``: one row per recorded listing: ``id`` (grows with time), ``t`` (unix
  seconds, server time), ``listed`` (servers in the listing) and ``rates`` (USD per unit
  of each currency, JSON, or NULL when unknown);
* ``statics``: a server's slow-moving terms (owner, GPUs, specs, ``mrl``, currencies, CUDA)
  as the full record when they were first seen (``record``, msgspec JSON);
* ``changes``: a row for a server only in a snapshot where something about it changed:
  listed or not (``online``), ``rented``, the six prices (on-demand and spot, per day, in
  ``bitcoin``/``CLORE-Blockchain``/``USD-Blockchain``), rating (average, count),
  ``reliability`` (kept at 1 % resolution so its drift does not write a row per snapshot)
  or its terms (``static``, a new ``statics`` row). A server missing from a listing gets
  one ``online = 0`` row. Measured network and disk speeds are not compared (re-measuring
  is not a change of the offer); the ``USD`` hints of newer records are not stored (USD
  figures come from the snapshot's rates).

A server's state at snapshot *n* is its latest ``changes`` row with ``snap <= n``.

Restart-safe: a snapshot and its rows are one transaction; on opening, the store loads
every server's latest row, so the next snapshot is compared with what is stored and an
unchanged market adds no rows. A snapshot not later than the last one is skipped, so a
restarted recorder (or a loop feeding the listing it already had) never duplicates one.
Several writers may share a file: each write first checks that nobody else appended a
snapshot since it last looked, and reloads the state if someone did. WAL journal.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from clore._wire import Server
from clore.market.history.rows import (
    ONLINE,
    ROW_COLUMNS,
    SERVER,
    STATIC,
    HistoryError,
    Key,
    RecordResult,
    Row,
    Snapshot,
    StaticInfo,
    StoreInfo,
    row_key,
    same_terms,
)

__all__ = ["SCHEMA_VERSION", "HistoryStore"]

SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY,
    t REAL NOT NULL UNIQUE,
    listed INTEGER NOT NULL,
    rates TEXT
);
CREATE TABLE IF NOT EXISTS statics (
    id INTEGER PRIMARY KEY,
    server INTEGER NOT NULL,
    gpu TEXT NOT NULL,
    gpus INTEGER NOT NULL,
    owner INTEGER,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS statics_server ON statics (server);
CREATE TABLE IF NOT EXISTS changes (
    server INTEGER NOT NULL,
    snap INTEGER NOT NULL,
    static INTEGER NOT NULL,
    online INTEGER NOT NULL,
    rented INTEGER,
    od_btc REAL, od_clore REAL, od_usd REAL,
    sp_btc REAL, sp_clore REAL, sp_usd REAL,
    rating REAL, ratings INTEGER, reliability REAL,
    PRIMARY KEY (server, snap)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS changes_snap ON changes (snap);
"""


@dataclass
class _Current:
    key: Key | None  # None: not in the last listing
    static: int
    record: Server


def _create(path: Path) -> None:
    """Create an empty database file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


class HistoryStore:
    """A history database file (or ``":memory:"``); see the module docstring.

    ``record`` stores a full listing; ``record_delta`` stores what a caller knows changed
    (the simulator); ``batch`` groups many snapshots in one transaction. The read methods
    serve ``clore.market.history``'s statistics.
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            file = Path(self.path)
            if not file.exists():
                _create(file)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: not a history database ({exc})") from None
        self._batch = False
        self._current: dict[int, _Current] = {}
        # Each listed server as last received: one equal in every field (one comparison
        # in C, the common case) needs nothing computed at all.
        self._seen: dict[int, Server] = {}
        self._online = 0
        self._records: dict[int, Server] = {}
        self._last: Snapshot | None = None
        self._load_state()

    # ---- setup ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"{self.path}: written by a newer clore (schema {version}); upgrade clore"
                )
            if version == SCHEMA_VERSION:
                return
        elif tables - {"sqlite_sequence"}:
            raise HistoryError(f"{self.path}: not a history database (it has other tables)")
        db.executescript(_SCHEMA)
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )

    def _load_state(self) -> None:
        """Every server's latest row and terms, so the next snapshot is compared with them."""
        self._current.clear()
        self._seen.clear()
        self._last = self.last_snapshot()
        rows = self._db.execute(
            f"SELECT {ROW_COLUMNS} FROM changes c JOIN "
            "(SELECT server AS s, MAX(snap) AS m FROM changes GROUP BY server) "
            "ON c.server = s AND c.snap = m"
        ).fetchall()
        for row in rows:
            record = self.static_record(row[STATIC])
            key = None if not row[ONLINE] else tuple(row[ONLINE:])
            self._current[row[SERVER]] = _Current(key, row[STATIC], record)
        self._online = sum(1 for cur in self._current.values() if cur.key is not None)

    # ---- metadata --------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        """A value of the ``meta`` table (``endpoint``: where the snapshots came from)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a ``meta`` value."""
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ---- writing ---------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Record many snapshots in one transaction (bulk generation)."""
        if self._batch:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._batch = True
        try:
            self._check_fresh()
            yield
        except BaseException:
            self._batch = False
            self._db.execute("ROLLBACK")
            self._load_state()
            raise
        self._batch = False
        self._db.execute("COMMIT")

    def record(
        self, servers: Iterable[Server], *, at: float, rates: Mapping[str, float] | None = None
    ) -> RecordResult:
        """Store a full listing taken at ``at``: rows only for servers that changed, and an
        ``online = 0`` row for each server that left the listing."""
        # A server listed twice counts once (the later record wins).
        listing = {server.id: server for server in servers}
        return self._write(at, rates, listing.values(), full=listing)

    def record_delta(
        self,
        *,
        at: float,
        changed: Iterable[Server],
        offline: Iterable[int] = (),
        rates: Mapping[str, float] | None = None,
    ) -> RecordResult:
        """Store a snapshot described by what changed since the last one: the ``changed``
        servers (compared as usual) and the ids that left the listing; every other server
        is as it was."""
        return self._write(at, rates, list(changed), gone=list(offline))

    def _check_fresh(self) -> None:
        """Reload the state when another writer appended a snapshot since we last looked."""
        last = self.last_snapshot()
        mine = self._last.id if self._last else None
        if (last.id if last else None) != mine:
            self._load_state()

    def _write(
        self,
        at: float,
        rates: Mapping[str, float] | None,
        candidates: Iterable[Server],
        *,
        full: Mapping[int, Server] | None = None,
        gone: Sequence[int] = (),
    ) -> RecordResult:
        at = float(at)
        db = self._db
        if not self._batch:
            db.execute("BEGIN IMMEDIATE")
        try:
            if not self._batch:
                self._check_fresh()
            if self._last is not None and at <= self._last.t:
                if not self._batch:
                    db.execute("ROLLBACK")
                return RecordResult(None, at, self._online, 0, 0, skipped=True)
            result = self._apply(at, rates, candidates, full, gone)
        except BaseException:
            if not self._batch:
                db.execute("ROLLBACK")
                self._load_state()
            raise
        if not self._batch:
            db.execute("COMMIT")
        return result

    def _apply(
        self,
        at: float,
        rates: Mapping[str, float] | None,
        candidates: Iterable[Server],
        full: Mapping[int, Server] | None,
        gone: Sequence[int],
    ) -> RecordResult:
        db = self._db
        # Under the write lock and checked fresh, so the next id is ours to take.
        snap = (self._last.id if self._last is not None else 0) + 1
        current = self._current
        rows: list[Row] = []
        updates: dict[int, _Current] = {}
        seen = self._seen
        fresh = [server for server in candidates if seen.get(server.id) != server]
        for server in fresh:
            cur = current.get(server.id)
            key = row_key(server)
            if cur is not None and same_terms(cur.record, server):
                if cur.key == key:
                    continue
                static, record = cur.static, cur.record
            else:
                static, record = self._insert_static(server), server
            rows.append((server.id, snap, static, *key))
            updates[server.id] = _Current(key, static, record)
        missing = current.keys() - full.keys() if full is not None else gone
        leaving = sorted(sid for sid in missing if sid in current and current[sid].key is not None)
        for sid in leaving:
            cur = current[sid]
            rows.append((sid, snap, cur.static, 0, *([None] * 10)))
            updates[sid] = _Current(None, cur.static, cur.record)
        listed = self._online
        for sid, new in updates.items():
            old = current.get(sid)
            listed += (new.key is not None) - (old is not None and old.key is not None)
        rates_json = json.dumps(dict(rates), sort_keys=True) if rates else None
        db.execute(
            "INSERT INTO snapshots (id, t, listed, rates) VALUES (?, ?, ?, ?)",
            (snap, at, listed, rates_json),
        )
        if rows:
            db.executemany(
                f"INSERT INTO changes ({ROW_COLUMNS}) VALUES ({', '.join('?' * 14)})", rows
            )
        current.update(updates)
        seen.update((server.id, server) for server in fresh)
        for sid in leaving:
            seen.pop(sid, None)
        self._online = listed
        self._last = Snapshot(snap, at, listed, dict(rates) if rates else None)
        changed = len(rows) - len(leaving)
        return RecordResult(snap, at, listed, changed, len(leaving))

    def _insert_static(self, server: Server) -> int:
        gpu = server.specs.gpu
        cursor = self._db.execute(
            "INSERT INTO statics (server, gpu, gpus, owner, record) VALUES (?, ?, ?, ?, ?)",
            (server.id, gpu, server.gpu_count, server.owner, msgspec.json.encode(server)),
        )
        static = int(cursor.lastrowid or 0)
        self._records[static] = server
        return static

    # ---- reading ---------------------------------------------------------------------------

    def static_record(self, static: int) -> Server:
        """The record of a ``statics`` row (decoded once, then cached)."""
        record = self._records.get(static)
        if record is None:
            row = self._db.execute("SELECT record FROM statics WHERE id = ?", (static,)).fetchone()
            if row is None:
                raise HistoryError(f"{self.path}: no statics row {static}")
            record = msgspec.json.decode(row[0], type=Server, strict=False)
            self._records[static] = record
        return record

    def statics(self) -> dict[int, StaticInfo]:
        """Every ``statics`` row (without records), by id."""
        rows = self._db.execute("SELECT id, server, gpu, gpus, owner FROM statics")
        return {row[0]: StaticInfo(*row) for row in rows}

    @staticmethod
    def _snapshot(row: Row) -> Snapshot:
        rates = json.loads(row[3]) if row[3] else None
        return Snapshot(int(row[0]), float(row[1]), int(row[2]), rates)

    def last_snapshot(self) -> Snapshot | None:
        """The latest snapshot, or None in an empty store."""
        row = self._db.execute(
            "SELECT id, t, listed, rates FROM snapshots ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else self._snapshot(row)

    def snapshot_at(self, t: float) -> Snapshot | None:
        """The latest snapshot taken at or before ``t``."""
        row = self._db.execute(
            "SELECT id, t, listed, rates FROM snapshots WHERE t <= ? ORDER BY t DESC LIMIT 1",
            (float(t),),
        ).fetchone()
        return None if row is None else self._snapshot(row)

    def snapshots(self, since: float | None = None, until: float | None = None) -> list[Snapshot]:
        """Snapshots with ``since <= t <= until`` (either bound optional), in time order."""
        low = float("-inf") if since is None else float(since)
        high = float("inf") if until is None else float(until)
        rows = self._db.execute(
            "SELECT id, t, listed, rates FROM snapshots WHERE t >= ? AND t <= ? ORDER BY id",
            (low, high),
        )
        return [self._snapshot(row) for row in rows]

    def _select(self, servers: Iterable[int] | None) -> str:
        """A ``server IN (...)`` clause over a temporary table of ``servers`` (or nothing)."""
        if servers is None:
            return ""
        db = self._db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (server INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM wanted")
        db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((s,) for s in servers))
        return " AND server IN (SELECT server FROM wanted)"

    def state_at(self, snap: int, servers: Iterable[int] | None = None) -> dict[int, Row]:
        """Each server's latest change row at snapshot ``snap`` (those of ``servers`` only)."""
        where = self._select(servers)
        rows = self._db.execute(
            f"SELECT {ROW_COLUMNS} FROM changes c JOIN "
            f"(SELECT server AS s, MAX(snap) AS m FROM changes WHERE snap <= ?{where} "
            "GROUP BY server) ON c.server = s AND c.snap = m",
            (snap,),
        )
        return {row[SERVER]: row for row in rows}

    def changes(self, after: int, until: int, servers: Iterable[int] | None = None) -> list[Row]:
        """Change rows of snapshots ``after < snap <= until`` (of ``servers``), by snapshot."""
        where = self._select(servers)
        return self._db.execute(
            f"SELECT {ROW_COLUMNS} FROM changes WHERE snap > ? AND snap <= ?{where} "
            "ORDER BY snap, server",
            (after, until),
        ).fetchall()

    def size_bytes(self) -> int:
        """Bytes on disk: the database file and its write-ahead log."""
        if self.path == ":memory:":
            row = self._db.execute("PRAGMA page_count").fetchone()
            size = self._db.execute("PRAGMA page_size").fetchone()
            return int(row[0]) * int(size[0])
        total = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                total += os.path.getsize(self.path + suffix)
        return total

    def info(self) -> StoreInfo:
        """Size and span of the store."""
        db = self._db
        count, first, last = db.execute("SELECT COUNT(*), MIN(t), MAX(t) FROM snapshots").fetchone()
        servers = db.execute("SELECT COUNT(DISTINCT server) FROM statics").fetchone()[0]
        rows = db.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
        statics = db.execute("SELECT COUNT(*) FROM statics").fetchone()[0]
        return StoreInfo(
            path=self.path,
            size_bytes=self.size_bytes(),
            snapshots=int(count),
            first=first,
            last=last,
            servers=int(servers),
            change_rows=int(rows),
            statics=int(statics),
        )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
