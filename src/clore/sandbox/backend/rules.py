"""The sandbox's market rules: every number the public sources leave open, in one place.

docs/sandbox.md lists each of these as a decision; change them here and there together.
The API's own facts (currencies, intervals, field limits) are ``clore._facts``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from clore._facts import CURRENCIES

__all__ = [
    "CREATION_FEES",
    "CREATION_FEE_AFTER",
    "CURRENCIES",
    "CURRENCY_RATES_USD",
    "DAY",
    "DEMO_BALANCES",
    "FUNDED_SECONDS",
    "MARKET_USER_ID",
    "MAX_CATCHUP_EVENTS",
    "MAX_CATCHUP_TICKS",
    "MAX_STEP_FRACTION",
    "MY_SERVERS_LIMIT",
    "PROVISIONING_DELAY",
    "RENTER_FEE_PERCENT",
    "WITHDRAWAL_FEES",
    "fee_rate",
    "to_usd",
]

DAY: Final = 86400.0

#: USD per unit, as ``spot_marketplace`` reports them (fixed; the reference's figures).
CURRENCY_RATES_USD: Final[Mapping[str, float]] = {
    "bitcoin": 68022.87,
    "CLORE-Blockchain": 0.002705,
    "USD-Blockchain": 1.0,
}

#: Renter fee in percent of the rental, charged on top of ``spend`` (reference: 10 / 2.5).
RENTER_FEE_PERCENT: Final[Mapping[str, float]] = {"on_demand": 10.0, "spot": 2.5}

#: One-off fee per new order, about one US cent in each currency.
CREATION_FEES: Final[Mapping[str, Mapping[str, float]]] = {
    kind: {"bitcoin": 0.00000015, "CLORE-Blockchain": 4.0, "USD-Blockchain": 0.01}
    for kind in ("on_demand", "spot")
}

#: The creation fee is taken once an order has run this many seconds (Clore's rule:
#: an order cancelled before pays none).
CREATION_FEE_AFTER: Final = 600.0

WITHDRAWAL_FEES: Final[Mapping[str, float]] = {
    "bitcoin": 0.00005,
    "CLORE-Blockchain": 10.0,
    "USD-Blockchain": 1.0,
}

#: The demo user's starting balances.
DEMO_BALANCES: Final[Mapping[str, float]] = {
    "bitcoin": 0.1,
    "CLORE-Blockchain": 200000.0,
    "USD-Blockchain": 500.0,
}

#: Seconds from an order starting to run until pub_cluster/tcp_ports/http_pub appear.
PROVISIONING_DELAY: Final = 10.0

#: A new order needs the creation fee plus this many seconds of rental in its wallet.
FUNDED_SECONDS: Final = 3600.0

MAX_STEP_FRACTION: Final = 0.1

MY_SERVERS_LIMIT: Final = 16

#: The user that stands for every other renter on the market (never authenticates).
MARKET_USER_ID: Final = 0

#: At most this many scheduled events (expiries, provisioning, ...) are processed in one
#: catch-up, and at most ``MAX_CATCHUP_TICKS`` market ticks; a clock that jumped further
#: ahead skips the remaining market ticks.
MAX_CATCHUP_EVENTS: Final = 50000
MAX_CATCHUP_TICKS: Final = 500


def fee_rate(spot: bool) -> float:
    """The renter fee as a fraction of the rental for an order type."""
    return RENTER_FEE_PERCENT["spot" if spot else "on_demand"] / 100.0


def to_usd(amount: float, currency: str) -> float:
    """``amount`` of ``currency`` in USD at the fixed rates (0 for unknown currencies)."""
    return amount * CURRENCY_RATES_USD.get(currency, 0.0)
