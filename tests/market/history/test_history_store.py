"""The recorder's storage: change-only rows, restart without duplicates, one file per market."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest
from history_helpers import RATES, listing

from clore.market.history import HistoryError, HistoryStore, open_store

if TYPE_CHECKING:
    from clore import Clore
    from clore._clock import ManualClock
    from clore.sandbox import Sandbox


def rows(path: Path) -> int:
    """Change rows in the file, counted by SQLite itself."""
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM changes").fetchone()[0])


def test_the_first_snapshot_stores_every_server(
    store: HistoryStore, db_path: Path, clore_client: Clore
) -> None:
    """A new store has nothing to compare with: one row per listed server."""
    servers = listing(clore_client)
    result = store.record(servers, at=1000.0, rates=RATES)
    assert (len(servers), len(servers), len(servers)) == (
        result.servers,
        result.changed,
        rows(db_path),
    )


def test_a_snapshot_that_changes_nothing_adds_no_rows(
    store: HistoryStore, db_path: Path, clore_client: Clore, sandbox: Sandbox
) -> None:
    """The same market a poll later: a snapshot row, no server rows."""
    store.record(listing(clore_client), at=1000.0)
    before = rows(db_path)
    sandbox.advance(300)
    result = store.record(listing(clore_client), at=1300.0)
    assert (0, before, 2) == (result.changed, rows(db_path), store.info().snapshots)


def test_a_price_change_adds_exactly_one_row(
    store: HistoryStore, db_path: Path, clore_client: Clore, sandbox: Sandbox
) -> None:
    """A host repricing one server writes that server's row and nothing else."""
    first = listing(clore_client)
    store.record(first, at=1000.0)
    before = rows(db_path)
    target = first[0]
    sandbox.set_server(target.id, price={"on_demand": {"bitcoin": 0.00123}})
    result = store.record(listing(clore_client), at=1300.0)
    with sqlite3.connect(db_path) as db:
        changed = db.execute("SELECT server, od_btc FROM changes WHERE snap = 2").fetchall()
    assert (1, before + 1, [(target.id, 0.00123)]) == (result.changed, rows(db_path), changed)


def test_renting_and_leaving_the_listing_are_changes(
    store: HistoryStore, clore_client: Clore, sandbox: Sandbox
) -> None:
    """A rented server gets a row; one gone from the listing gets one online=0 row, once."""
    first = listing(clore_client)
    store.record(first, at=1000.0)
    free = next(s for s in first if not s.rented)
    sandbox.set_server(free.id, rented=True)
    sandbox.set_server(first[1].id, online=False)
    second = store.record(listing(clore_client), at=1300.0)
    third = store.record(listing(clore_client), at=1600.0)
    sandbox.set_server(first[1].id, online=True)
    fourth = store.record(listing(clore_client), at=1900.0)
    assert [
        (second.changed, second.offline),
        (third.changed, third.offline),
        (fourth.changed, fourth.offline),
    ] == [(1, 1), (0, 0), (1, 0)]


def test_remeasured_speeds_and_reliability_drift_are_not_changes(
    store: HistoryStore, clore_client: Clore
) -> None:
    """Network/disk speed measurements and reliability moves below 1 % write no row."""
    servers = listing(clore_client)
    store.record(servers, at=1000.0)
    s = servers[0]
    net = msgspec.structs.replace(s.specs.net, down=float(s.specs.net.down) + 7.5)
    remeasured = msgspec.structs.replace(
        s,
        specs=msgspec.structs.replace(s.specs, net=net, disk_speed=123.4),
        reliability=round(float(s.reliability), 2) + 0.001,
    )
    result = store.record([remeasured, *servers[1:]], at=1300.0)
    assert result.changed == 0


def test_new_specs_are_new_terms(store: HistoryStore, clore_client: Clore) -> None:
    """A host changing the hardware (here the RAM) stores new terms for that server."""
    servers = listing(clore_client)
    store.record(servers, at=1000.0)
    s = servers[0]
    upgraded = msgspec.structs.replace(s, specs=msgspec.structs.replace(s.specs, ram=512.0))
    result = store.record([upgraded, *servers[1:]], at=1300.0)
    assert (1, len(servers) + 1) == (result.changed, store.info().statics)


def test_a_restart_continues_without_duplicates(
    db_path: Path, clore_client: Clore, sandbox: Sandbox
) -> None:
    """Reopening compares with what is stored: the same market adds no row, and a
    snapshot not newer than the last is skipped, never stored twice."""
    servers = listing(clore_client)
    with HistoryStore(db_path) as first:
        first.record(servers, at=1000.0, rates=RATES)
    before = rows(db_path)
    with HistoryStore(db_path) as again:
        repeat = again.record(servers, at=1000.0, rates=RATES)
        later = again.record(listing(clore_client), at=1300.0, rates=RATES)
        info = again.info()
    assert (True, 0, before, 2) == (repeat.skipped, later.changed, rows(db_path), info.snapshots)


def test_two_writers_on_one_file_do_not_duplicate_rows(
    db_path: Path, clore_client: Clore, sandbox: Sandbox
) -> None:
    """A second process appending (here a second store object) is noticed before writing."""
    servers = listing(clore_client)
    one, two = HistoryStore(db_path), HistoryStore(db_path)
    try:
        one.record(servers, at=1000.0)
        sandbox.set_server(servers[0].id, price={"on_demand": {"bitcoin": 0.00321}})
        changed = listing(clore_client)
        two.record(changed, at=1300.0)
        result = one.record(changed, at=1600.0)
    finally:
        one.close()
        two.close()
    assert (0, len(servers) + 1) == (result.changed, rows(db_path))


def test_a_failed_write_leaves_nothing_and_the_state_intact(
    store: HistoryStore, db_path: Path, clore_client: Clore
) -> None:
    """A snapshot is one transaction: an error midway stores no part of it."""
    servers = listing(clore_client)
    store.record(servers, at=1000.0)
    broken = msgspec.structs.replace(servers[0], rented=not servers[0].rented, rating=None)
    with pytest.raises(AttributeError):
        store.record([broken, *servers[1:]], at=1300.0)  # type: ignore[list-item]
    result = store.record(servers, at=1600.0)
    assert (0, 2, len(servers)) == (result.changed, store.info().snapshots, rows(db_path))


def test_the_database_is_private_and_in_wal_mode(store: HistoryStore, db_path: Path) -> None:
    """The file is created 0600 and journals with a write-ahead log."""
    with sqlite3.connect(db_path) as db:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert (stat.S_IMODE(os.stat(db_path).st_mode), mode) == (0o600, "wal")


def test_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    """Pointing --db at some other SQLite file is a one-line error, not a migration."""
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(HistoryError, match="not a history database"):
        HistoryStore(other)


def test_one_file_per_market(clore_client: Clore, sandbox_clock: ManualClock) -> None:
    """The sandbox's and the real market's histories are separate files, and recording
    one market into the other's file is refused."""
    sandbox_store = open_store(endpoint="sandbox", recording=True)
    real_path = open_store(recording=True)
    paths = (Path(sandbox_store.path).name, Path(real_path.path).name)
    sandbox_store.close()
    real_path.close()
    with pytest.raises(HistoryError, match="holds the history of sandbox"):
        open_store(sandbox_store.path, endpoint="https://example.test/v1", recording=True)
    assert paths == ("market-history-sandbox.db", "market-history.db")
