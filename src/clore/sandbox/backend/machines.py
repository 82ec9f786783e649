"""What the domain knows of order machines: where a provisioned order is reached, which
orders should have a running machine, and what each server's host really delivers.

The backend never starts anything. At the end of provisioning it asks an ``Endpoints``
(the sandbox's fleet of machines) for the host and public ports of the order; the fleet
then keeps a machine running for every order ``machine_wanted`` says should have one.
What a lying host delivers (``clore.sandbox.machines.Delivers``, any subset) is stored
per server in the ``delivers`` meta value, so every process on one database sees it and
the listing stays as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from clore.sandbox.backend.errors import invalid_input
from clore.sandbox.backend.records import OrderRec, ServerRec
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import MARKET_USER_ID
from clore.sandbox.machines.spec import Delivers

__all__ = [
    "DELIVERS_META",
    "LOOPBACK",
    "Assigned",
    "Endpoints",
    "all_delivers",
    "machine_wanted",
    "merge_delivers",
    "public_port",
    "set_delivers",
]

#: The host of every order's public endpoints unless the machines are exposed on purpose.
LOOPBACK = "127.0.0.1"

#: Meta key of ``{server_id: delivers}`` (the fields that differ from the listing).
DELIVERS_META = "delivers"


@dataclass(frozen=True)
class Assigned:
    """Where a provisioned order is reached: ``pub_cluster``, ``tcp_ports``, ``http_pub``."""

    host: str
    tcp_ports: list[str]
    http_pub: str | None


class Endpoints(Protocol):
    """Hands out the public endpoints of an order at the end of its provisioning."""

    def assign(self, order: OrderRec, server: ServerRec) -> Assigned:
        """The host and public ports the order's machine will listen on."""
        ...


def machine_wanted(order: OrderRec) -> bool:
    """True when the order should have a running machine: a real user's order that is
    provisioned and running now (active, its server online, not ended) — which is what
    ``billing`` says. Outbid offers and orders on offline servers have none."""
    return (
        order.billing and order.provisioned and not order.ended and order.user_id != MARKET_USER_ID
    )


def public_port(http_pub: str | None) -> int | None:
    """The port of an ``http_pub`` of the form ``HOST:PORT`` (None otherwise)."""
    if not http_pub:
        return None
    _, sep, tail = http_pub.rpartition(":")
    return int(tail) if sep and tail.isascii() and tail.isdigit() else None


def all_delivers(repo: Repository) -> dict[int, dict[str, Any]]:
    """Every lying server's delivers: ``{server_id: {field: value}}``."""
    raw = repo.get_meta(DELIVERS_META)
    if not raw:
        return {}
    return {int(key): dict(value) for key, value in json.loads(raw).items()}


def merge_delivers(current: Mapping[str, Any], changes: Mapping[str, Any] | None) -> Delivers:
    """``current`` with ``changes`` applied (a field set to None returns to the listing;
    ``changes`` None clears everything). ValueError (one line) on bad input."""
    if changes is None:
        return Delivers()
    merged = {**current, **changes}
    return Delivers.from_mapping({k: v for k, v in merged.items() if v is not None})


def set_delivers(repo: Repository, server_id: int, changes: Mapping[str, Any] | None) -> Delivers:
    """Make ``server_id`` deliver other hardware than it lists (``changes`` merged into what
    it delivers now; None: honest again); code 2 on bad input. Returns the new delivers."""
    table = all_delivers(repo)
    try:
        delivers = merge_delivers(table.get(server_id, {}), changes)
    except ValueError as exc:
        raise invalid_input(str(exc)) from None
    if delivers.honest:
        table.pop(server_id, None)
    else:
        table[server_id] = delivers.to_dict()
    repo.set_meta(DELIVERS_META, json.dumps({str(k): v for k, v in sorted(table.items())}))
    return delivers
