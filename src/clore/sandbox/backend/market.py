"""The public market: ``marketplace`` (as a change feed for the encoder) and ``renter_fees``."""

from __future__ import annotations

from typing import Any

from clore.sandbox.backend.records import MarketplaceView
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import CREATION_FEES, CURRENCIES, RENTER_FEE_PERCENT

__all__ = ["marketplace", "marketplace_rev", "renter_fees"]


def marketplace_rev(repo: Repository) -> tuple[int, int]:
    """(current revision, revision of the last reset): together they version the listing."""
    return int(repo.get_meta("rev") or 0), int(repo.get_meta("base_rev") or 0)


def marketplace(repo: Repository, user_id: int | None, since: int) -> MarketplaceView:
    """Servers whose listing changed after revision ``since`` (all, when ``since`` predates
    the last reset), and the ids of the caller's own servers."""
    rev, base = marketplace_rev(repo)
    full = since < base
    changed = repo.servers_changed_since(-1 if full else since) if rev != since or full else []
    mine = repo.owned_server_ids(user_id) if user_id is not None else []
    return MarketplaceView(rev=rev, full=full, changed=changed, my_servers=mine)


def renter_fees() -> dict[str, Any]:
    """Percentage fees and one-off creation fees per order type, for every currency."""
    return {
        "renter_fees": {
            kind: {"base": {c: percent for c in CURRENCIES}}
            for kind, percent in RENTER_FEE_PERCENT.items()
        },
        "creation_fees": {kind: dict(fees) for kind, fees in CREATION_FEES.items()},
    }
