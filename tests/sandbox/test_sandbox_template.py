"""Sandboxes copied from a seeded template are the sandboxes a fresh seeding would build."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from clore._clock import ManualClock
from clore.sandbox import Sandbox
from clore.sandbox.store import SqliteStore
from clore.sandbox.template import Templates

TABLES = ("meta", "users", "wallets", "servers", "orders", "ports", "faults")


def dump(sb: Sandbox, *, without_keys: bool = True) -> dict[str, list[Any]]:
    """Every row of every table (the users' API keys left out when asked)."""
    db: sqlite3.Connection = sb.store._db
    out: dict[str, list[Any]] = {}
    for table in TABLES:
        rows = [list(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]
        if table == "users" and without_keys:
            for row in rows:
                row[2] = None
        out[table] = rows
    out["version"] = list(db.execute("PRAGMA user_version").fetchone())
    return out


@pytest.mark.parametrize("activity", [0.0, 0.5])
def test_a_copy_equals_a_fresh_seeding_of_the_snapshot(activity: float) -> None:
    """Every table of a templated sandbox holds what a seeded one holds, demo key aside."""
    templates = Templates()
    fresh = Sandbox(clock=ManualClock(), market_activity=activity, rng_seed=3)
    copied = Sandbox(clock=ManualClock(), market_activity=activity, rng_seed=3, template=templates)
    try:
        assert dump(fresh) == dump(copied)
        assert len(dump(copied)["servers"]) == 3500 and templates.built == 1
    finally:
        fresh.close()
        copied.close()
        templates.close()


def test_every_copy_has_its_own_demo_key_unless_one_is_given() -> None:
    """Two copies get two random demo keys; demo_key= is honoured, and it works."""
    templates = Templates()
    one = Sandbox(clock=ManualClock(), template=templates)
    two = Sandbox(clock=ManualClock(), template=templates)
    fixed = Sandbox(clock=ManualClock(), template=templates, demo_key="k" * 32)
    try:
        assert one.demo_key != two.demo_key and len(one.demo_key) == 32
        assert fixed.demo_key == "k" * 32
        with fixed.client() as client:
            assert client.wallets()
        assert templates.built == 1
    finally:
        for sb in (one, two, fixed):
            sb.close()
        templates.close()


def test_copies_are_independent_of_each_other_and_of_the_template() -> None:
    """An order in one copy is in no other copy made before or after it."""
    templates = Templates()
    first = Sandbox(clock=ManualClock(), template=templates, rate_limit=False)
    try:
        with first.client() as client:
            server = next(s for s in client.marketplace() if not s.rented and s.accepts("bitcoin"))
            client.create_order(server.id, "img")
            assert len(client.my_orders()) == 1
        second = Sandbox(clock=ManualClock(), template=templates)
        with second.client() as client:
            assert client.my_orders() == []
            assert not next(s for s in client.marketplace() if s.id == server.id).rented
        second.close()
    finally:
        first.close()
        templates.close()


def test_a_template_serves_only_its_own_time_and_seed(tmp_path: Path) -> None:
    """Another start time, rng seed or seed file gets its own template; a seed file changed
    since its template was built is seeded again."""
    seed = tmp_path / "market.json"
    seed.write_text(json.dumps({"servers": [{"id": 1, "price": {"on_demand": {"bitcoin": 1}}}]}))
    templates = Templates(limit=8)
    made = [
        Sandbox(clock=ManualClock(), template=templates),
        Sandbox(clock=ManualClock(1_800_000_000.0), template=templates),
        Sandbox(clock=ManualClock(), rng_seed=1, template=templates),
        Sandbox(seed=str(seed), clock=ManualClock(), template=templates),
        Sandbox(seed=str(seed), clock=ManualClock(), template=templates),
    ]
    assert templates.built == 4
    seed.write_text(json.dumps({"servers": [{"id": 2}, {"id": 3}]}))
    changed = Sandbox(seed=str(seed), clock=ManualClock(), template=templates)
    assert templates.built == 5
    with changed.client() as client:
        assert sorted(s.id for s in client.marketplace()) == [2, 3]
    for sb in [*made, changed]:
        sb.close()
    templates.close()


def test_the_least_recently_used_template_is_dropped_past_the_limit() -> None:
    """A bounded number of templates is kept; a dropped one is built again when needed."""
    templates = Templates(limit=2)
    for start in (1.0e9, 1.1e9, 1.0e9, 1.2e9, 1.0e9, 1.1e9):
        Sandbox(seed=None, clock=ManualClock(start), template=templates).close()
    assert (templates.built, len(templates)) == (4, 2)
    templates.close()


def test_an_existing_database_file_is_opened_not_replaced(tmp_path: Path) -> None:
    """A file that already holds a sandbox keeps its orders and its demo key."""
    path = tmp_path / "state.db"
    templates = Templates()
    first = Sandbox(db=path, clock=ManualClock(), template=templates, rate_limit=False)
    key = first.demo_key
    with first.client() as client:
        server = next(s for s in client.marketplace() if not s.rented and s.accepts("bitcoin"))
        order = client.create_order(server.id, "img")
    first.close()
    again = Sandbox(db=path, clock=ManualClock(), template=templates)
    try:
        assert again.demo_key == key
        with again.client() as client:
            assert [o.id for o in client.my_orders()] == [order.id]
    finally:
        again.close()
        templates.close()


def test_a_file_copy_is_owner_only_in_wal_mode_and_lasts(tmp_path: Path) -> None:
    """A copied file database is 0600, journals in WAL and reopens with the same state."""
    path = tmp_path / "deep" / "sandbox.db"
    templates = Templates()
    sb = Sandbox(db=path, clock=ManualClock(), template=templates)
    before = dump(sb, without_keys=False)
    mode = sb.store._db.execute("PRAGMA journal_mode").fetchone()[0]
    sb.close()
    assert mode == "wal"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reopened = Sandbox(db=path, clock=ManualClock())
    try:
        assert dump(reopened, without_keys=False) == before
    finally:
        reopened.close()
        templates.close()


def test_a_store_is_never_copied_onto_itself() -> None:
    """copy_from refuses its own database."""
    store = SqliteStore()
    with pytest.raises(ValueError, match="onto itself"):
        store.copy_from(store)
    store.close()


def test_the_fixture_sandboxes_share_one_seeding(
    sandbox_factory: Any, sandbox_templates: Templates
) -> None:
    """The sandbox fixture's factory copies this session's template: no seeding per test."""
    built = sandbox_templates.built
    one, two = sandbox_factory(), sandbox_factory()
    assert one.demo_key != two.demo_key
    assert sandbox_templates.built - built <= 1  # at most the first use this session
    assert dump(one) == dump(two)
