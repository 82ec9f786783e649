"""The sandbox database holds every sandbox key in plain text: it is owner-only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from clore.sandbox import Sandbox


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _permissive_umask() -> Iterator[None]:
    """The common umask 022, which would leave new files world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_database_its_wal_shm_and_directories_are_owner_only(tmp_path: Path) -> None:
    """Created directories are 0700; the database and its -wal/-shm files are 0600."""
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    db = existing / "made" / "deeper" / "sandbox.db"
    with Sandbox(db=db, seed=None) as sb:
        sb.create_user("u", {"bitcoin": 1.0})
        modes = {
            "made": _mode(existing / "made"),
            "deeper": _mode(db.parent),
            "db": _mode(db),
            "wal": _mode(Path(f"{db}-wal")),
            "shm": _mode(Path(f"{db}-shm")),
        }
    assert modes == {"made": 0o700, "deeper": 0o700, "db": 0o600, "wal": 0o600, "shm": 0o600}
    assert _mode(existing) == 0o755  # a directory that existed is left as it was


def test_an_existing_database_is_tightened_in_a_directory_left_as_is(tmp_path: Path) -> None:
    """A 0644 database (and a leftover 0644 -wal) from an older version become 0600."""
    db = tmp_path / "shared" / "sandbox.db"
    db.parent.mkdir(mode=0o755)
    Sandbox(db=db, seed=None).close()
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.touch()
        path.chmod(0o644)
    with Sandbox(db=db, seed=None):
        modes = [_mode(db), _mode(Path(f"{db}-wal")), _mode(Path(f"{db}-shm"))]
    assert (modes, _mode(db.parent)) == ([0o600, 0o600, 0o600], 0o755)


def test_a_memory_database_creates_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """':memory:' touches nothing on disk."""
    monkeypatch.chdir(tmp_path)
    Sandbox(db=":memory:", seed=None).close()
    assert list(tmp_path.iterdir()) == []
