"""The sandbox's domain: accounts, orders, spot, billing, hosts and the simulated market.

``Backend`` is the one entry point. Each method is named after its API endpoint
(``Backend.create_order`` serves ``POST /v1/create_order``), reads the clock once, runs
in one store transaction, brings the state up to that instant first (``settle``) and
reschedules the next event after a change. Nothing here knows about HTTP; failures are
``ApiError`` carrying the API code and error string.
"""

from __future__ import annotations

from clore.sandbox.backend.api import Backend
from clore.sandbox.backend.errors import ApiError

__all__ = ["ApiError", "Backend"]
