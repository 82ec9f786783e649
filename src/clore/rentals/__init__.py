"""Renting a server, for every face (the CLI, the job runner, the agent server).

- ``choice``: which servers a rental may go to, best first (``cheapest``, ``payable``).
- ``placement``: one order on the first candidate that takes it, moving on when a race
  is lost, stopping when the order may exist (``place``, ``Candidate``, ``race_lost``);
  with verification in the free window, moving on past a machine that lies
  (``place_verified``, ``avoid_bad_hosts``).
- ``access``: how the renter reaches the container (``parse_ports``, SSH public keys and
  the default one, ``login_problem``, ``add_include`` for ``~/.ssh/config``).
- ``credentials``: how each order is logged in to, remembered on this machine
  (``RentalLogins``, ``credentials_for``), and each order's known-hosts file.
- ``status``: an order's status told apart beyond the API (``order_status``: cancelled,
  expired, outbid, budget-stopped).
- ``orders``: spot bids winning or not (``spot_activity``), cancelling several orders
  with every check first (``cancel_orders``).
- ``verify`` (a subpackage, imported as ``clore.rentals.verify``): the machine checked
  against its listing, acting inside the free window, the bad-host list.

What an order asks for is ``clore.workflows.RentSpec`` (its ``preview`` is exactly the
body ``create_order`` sends); an order's state is ``clore.Order.state_at``.
"""

from __future__ import annotations

from clore.rentals.access import (
    DEFAULT_KEY_NAMES,
    KEY_ENV,
    IncludeAdded,
    PublicKeyFile,
    add_include,
    default_public_key,
    login_problem,
    looks_private,
    parse_ports,
    private_key_beside,
    public_key_problem,
    read_public_key,
    ssh_forwarded,
)
from clore.rentals.choice import cheapest, payable
from clore.rentals.credentials import (
    LoginsFileError,
    RentalLogin,
    RentalLogins,
    credentials_for,
    known_hosts_path,
)
from clore.rentals.orders import cancel_orders, spot_activity
from clore.rentals.placement import (
    Candidate,
    Placed,
    PlaceVerifiedClient,
    Skipped,
    Verified,
    avoid_bad_hosts,
    place,
    place_verified,
    race_lost,
)
from clore.rentals.status import STATUSES, BudgetStop, OrderStatus, budget_stops, order_status

__all__ = [
    "DEFAULT_KEY_NAMES",
    "KEY_ENV",
    "STATUSES",
    "BudgetStop",
    "Candidate",
    "IncludeAdded",
    "LoginsFileError",
    "OrderStatus",
    "PlaceVerifiedClient",
    "Placed",
    "PublicKeyFile",
    "RentalLogin",
    "RentalLogins",
    "Skipped",
    "Verified",
    "add_include",
    "avoid_bad_hosts",
    "budget_stops",
    "cancel_orders",
    "cheapest",
    "credentials_for",
    "default_public_key",
    "known_hosts_path",
    "login_problem",
    "looks_private",
    "order_status",
    "parse_ports",
    "payable",
    "place",
    "place_verified",
    "private_key_beside",
    "public_key_problem",
    "race_lost",
    "read_public_key",
    "spot_activity",
    "ssh_forwarded",
]
