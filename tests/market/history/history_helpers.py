"""Helpers of the market-history tests (imported by name: this directory is on sys.path)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clore import Clore, Server

#: USD rates recorded with the tests' snapshots (controlled, so USD figures are known).
RATES = {"bitcoin": 60_000.0, "CLORE-Blockchain": 0.004, "USD-Blockchain": 1.0}


def listing(client: Clore) -> list[Server]:
    """The sandbox marketplace as the SDK returns it."""
    return list(client.marketplace())
