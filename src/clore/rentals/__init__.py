"""Renting a server, for every face (the CLI, the job runner, the agent server).

- ``choice``: which servers a rental may go to, best first (``cheapest``, ``payable``).
- ``placement``: one order on the first candidate that takes it, moving on when a race
  is lost, stopping when the order may exist (``place``, ``Candidate``, ``race_lost``).
- ``access``: how the renter reaches the container (``parse_ports``, SSH public keys).
- ``orders``: spot bids winning or not (``spot_activity``), cancelling several orders
  with every check first (``cancel_orders``).

What an order asks for is ``clore.workflows.RentSpec`` (its ``preview`` is exactly the
body ``create_order`` sends); an order's state is ``clore.Order.state_at``.
"""

from __future__ import annotations

from clore.rentals.access import (
    DEFAULT_KEY_NAMES,
    PublicKeyFile,
    default_public_key,
    looks_private,
    parse_ports,
    public_key_problem,
    read_public_key,
)
from clore.rentals.choice import cheapest, payable
from clore.rentals.orders import cancel_orders, spot_activity
from clore.rentals.placement import Candidate, Placed, Skipped, place, race_lost

__all__ = [
    "DEFAULT_KEY_NAMES",
    "Candidate",
    "Placed",
    "PublicKeyFile",
    "Skipped",
    "cancel_orders",
    "cheapest",
    "default_public_key",
    "looks_private",
    "parse_ports",
    "payable",
    "place",
    "public_key_problem",
    "race_lost",
    "read_public_key",
    "spot_activity",
]
