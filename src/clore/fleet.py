"""Several machines on one API key: where their shared pacing and ledgers live (public).

The API's limits (1 request/s, one ``create_order`` per 5 s, one spot lowering per
600 s) belong to the key, not to the machine. With a fleet's Redis configured, every
client of the key paces through it and every watch keeps its rental ledger there, so
the machines together keep the limits and rent once per intent (docs/fleet.md):

- ``CLORE_PACING_URL=redis://host:port/db`` (or a profile's ``pacing_url``, or
  ``clore.Pacing(url=...)``) chooses the Redis; ``CLORE_PACING=local`` (``clore
  --pacing local``, ``Pacing(url="local")``) keeps this machine's file whatever else says.
- A Redis that cannot be reached fails closed: ``FleetStoreError`` (a ``ConfigError``)
  names it without credentials, and no request is sent.
- ``LeaseLostError``: a ledger write refused because its lock's lease had ended, or a
  create_order whose claim on its server lapsed before it sent (nothing was sent).
- ``ServerClaimedError``: create_order waited its longest (``CLAIM_WAIT``, 120 s) while
  another create_order of the fleet held the claim on the same server; nothing was sent.
  The fleet's create_orders on one server run one at a time, so that each one's check of
  ``my_orders`` after an answer lost finds its own order, never another machine's.

Needs the ``redis`` package: ``pip install 'clore[fleet]'``.
"""

from __future__ import annotations

import os

from clore._pacing import CLAIM_WAIT, LOCAL
from clore._redis import (
    FleetStoreError,
    LeaseLostError,
    ServerClaimedError,
    check_url,
    redact_url,
)

__all__ = [
    "CLAIM_WAIT",
    "LOCAL",
    "FleetStoreError",
    "LeaseLostError",
    "ServerClaimedError",
    "check_url",
    "redact_url",
    "use_pacing",
]


def use_pacing(choice: str) -> None:
    """Make this process's clients pace on ``choice``: ``"local"`` (this machine's file)
    or a Redis URL, through the environment (``CLORE_PACING``, ``CLORE_PACING_URL``), so
    commands run from here (hooks) choose the same. A bad URL is a ConfigError."""
    if choice.strip().lower() == LOCAL:
        os.environ["CLORE_PACING"] = LOCAL
        return
    os.environ["CLORE_PACING_URL"] = check_url(choice, "--pacing")
    os.environ.pop("CLORE_PACING", None)
