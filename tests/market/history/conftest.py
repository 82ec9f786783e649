"""Fixtures of the market-history tests: a history file in the test's directory (the
sandbox and its clients come from ``clore.testing``, on a ``ManualClock``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clore.market.history import HistoryStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's history database lives."""
    return tmp_path / "history.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[HistoryStore]:
    """A history database file, closed after the test."""
    with HistoryStore(db_path) as opened:
        yield opened
