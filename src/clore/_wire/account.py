"""The caller's records: orders (``mrl`` in seconds), wallets and fees, hosted servers."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Final, Literal

from msgspec import UNSET, Struct, UnsetType, field

from clore._facts import currency_key
from clore._wire.common import Number, ascii_int, flatten_strings
from clore._wire.market import Rating, Specs

__all__ = [
    "ENDED_SLACK",
    "MyOrdersResponse",
    "MyServer",
    "MyServersResponse",
    "Order",
    "OrderState",
    "PohBalance",
    "RenterFees",
    "ServerConfig",
    "ServerConfigResponse",
    "Wallet",
    "WalletsResponse",
]


# --------------------------------------------------------------------------- orders

#: What an order is doing, as ``Order.state_at`` tells it: ``provisioning`` (not reachable
#: yet), ``running`` (reachable, its host online), ``offline`` (provisioned, its host
#: offline), ``outbid`` (a spot bid not winning now), ``expired`` (ended at ``ct + mrl``),
#: ``cancelled`` (ended before its time: by its renter, a guard, an on-demand renter taking
#: a spot server, an empty wallet). ``Order.state`` (the record alone) says ``ended`` for
#: the last two: the API flags both ``expired`` and gives no end time.
OrderState = Literal["provisioning", "running", "offline", "outbid", "expired", "cancelled"]

#: Seconds before ``ct + mrl`` within which an ended order counts as having run its course
#: (the API ends orders on its billing ticks, not on the second).
ENDED_SLACK: Final = 60.0


class Order(Struct, frozen=True, gc=False):
    """One of the caller's orders (``my_orders``). ``mrl`` is in **seconds**; ``price`` per day.

    ``pub_cluster`` and ``tcp_ports`` are lists (the API sends lists; a bare string is
    accepted too). They stay empty until the container is provisioned. The API does not
    echo the ``ports`` an order was created with: ``forwarded_ports`` rebuilds them.
    ``ct`` is on the server's clock: compare it with ``Clore.server_time()``.
    """

    id: int
    si: int = 0
    mrl: Number = 0
    price: Number = 0
    currency: str = ""
    image: str = ""
    spot: bool = False
    ct: Number = 0
    expired: bool = False
    pub_cluster: list[str] | str = []
    tcp_ports: list[str] | str = []
    http_port: str | int | None = None
    http_pub: str | None = None
    creation_fee: Number = 0
    spend: Number = 0
    online: bool = True
    specs: Specs = field(default_factory=Specs)
    reliability: Number = 0
    owner: int | None = None
    cuda_version: str | Number | None = None
    rating: Rating = field(default_factory=Rating)

    # ---- derived helpers -------------------------------------------------------------

    @property
    def server_id(self) -> int:
        """The rented server's id (the API calls it ``si``)."""
        return self.si

    @property
    def max_rental(self) -> timedelta:
        """Maximum rental length (``mrl`` is seconds in ``my_orders``)."""
        return timedelta(seconds=float(self.mrl))

    @property
    def created_at(self) -> datetime:
        """Creation time (``ct``) as an aware UTC datetime."""
        return datetime.fromtimestamp(float(self.ct), tz=timezone.utc)

    @property
    def ends_at(self) -> float:
        """``ct + mrl`` in unix seconds (server time): when the order ends at the latest.

        It may have ended earlier (cancelled, outbid for good, out of balance): then
        ``expired`` is true and ``ends_at - now`` tells how early.
        """
        return float(self.ct) + float(self.mrl)

    @property
    def expires_at(self) -> datetime:
        """``ends_at`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.ends_at, tz=timezone.utc)

    def time_left(self, now: float | None = None) -> timedelta:
        """How long the order may still run: ``ct + mrl - now``, never negative.

        Zero for an order that has ended (``expired``), however early it ended, so it
        cannot tell an order that ran its course from one cancelled hours before its end:
        use ``ends_at`` for that. ``now`` is the server's unix time: pass
        ``Clore.server_time()`` (the default, the local clock, is right only against the
        real API and only to within clock skew).
        """
        if self.expired:
            return timedelta(0)
        current = time.time() if now is None else now
        return timedelta(seconds=max(0.0, self.ends_at - current))

    @property
    def hosts(self) -> list[str]:
        """``pub_cluster`` as a list of hostnames."""
        return flatten_strings(self.pub_cluster)

    @property
    def port_map(self) -> dict[int, int]:
        """Container port -> public port, from ``tcp_ports`` ("22:12022")."""
        mapping: dict[int, int] = {}
        for entry in flatten_strings(self.tcp_ports):
            inner, _, public = entry.partition(":")
            container, host_port = ascii_int(inner), ascii_int(public)
            if container is not None and host_port is not None:
                mapping[container] = host_port
        return mapping

    @property
    def forwarded_ports(self) -> dict[str, str]:
        """Container port -> ``"tcp"``/``"http"``, the ``ports`` of ``create_order`` as far
        as ``my_orders`` shows them: the TCP ports of ``tcp_ports`` and the ``http_port``.

        Empty until the order is provisioned (the API fills both only then).
        """
        ports = {str(inner): "tcp" for inner in self.port_map}
        if self.http_port not in (None, ""):
            ports[str(self.http_port)] = "http"
        return ports

    @property
    def ssh_endpoint(self) -> tuple[str, int] | None:
        """(host, public port) for SSH, once the order is provisioned; else None."""
        hosts = self.hosts
        port = self.port_map.get(22)
        if not hosts or port is None:
            return None
        return hosts[0], port

    def ssh_command(self, user: str = "root") -> str | None:
        """The ``ssh`` command line that reaches the container, or None before provisioning."""
        endpoint = self.ssh_endpoint
        if endpoint is None:
            return None
        host, port = endpoint
        return f"ssh {user}@{host} -p {port}"

    @property
    def http_url(self) -> str | None:
        """URL of the forwarded ``http`` port (``http_pub``), or None: HTTPS, as the real
        API's proxy serves it, except for a loopback host (``127.0.0.1:PORT``, what the
        sandbox's local relay answers on), which is plain HTTP."""
        if not self.http_pub:
            return None
        host = str(self.http_pub)
        if host.startswith(("http://", "https://")):
            return host
        scheme = "http" if _loopback_host(host) else "https"
        return f"{scheme}://{host}"

    @property
    def ready(self) -> bool:
        """True when the order runs and is provisioned: it has hosts, and public TCP ports
        or an HTTPS proxy (an order forwarding only an ``http`` port has no TCP ports)."""
        return not self.expired and bool(self.hosts) and bool(self.port_map or self.http_pub)

    @property
    def price_per_hour(self) -> float:
        """Price (or current bid) per hour: ``price`` / 24."""
        return float(self.price) / 24.0

    @property
    def state(self) -> Literal["provisioning", "running", "offline", "ended"]:
        """What the record alone says: ``ended`` (the API's ``expired`` flag), else
        ``provisioning`` until it is ``ready``, ``offline`` while its host is, ``running``.

        Whether an ended order expired or was cancelled, and whether a spot bid is winning,
        take more than the record: see ``state_at``.
        """
        return "ended" if self.expired else self._live_state()

    def state_at(
        self, now: float, *, spot_active: bool | None = None, slack: float = ENDED_SLACK
    ) -> OrderState:
        """The order's ``OrderState`` at server time ``now`` (``Clore.server_time()``).

        An ended order ``expired`` when it ended within ``slack`` seconds of ``ct + mrl``
        (an unknown ``mrl`` never counts as run to its end), else it was ``cancelled``.
        ``spot_active`` is whether this spot order's offer is the winning one (the
        ``active`` flag of its offer in ``spot_marketplace``): ``False`` makes a running
        spot order ``outbid``; ``None`` (not looked up) says nothing.
        """
        if self.expired:
            ran_its_course = float(self.mrl) > 0 and self.ends_at - now <= slack
            return "expired" if ran_its_course else "cancelled"
        if self.spot and spot_active is False:
            return "outbid"
        return self._live_state()

    def _live_state(self) -> Literal["provisioning", "running", "offline"]:
        if not self.ready:
            return "provisioning"
        return "running" if self.online else "offline"


def _loopback_host(address: str) -> bool:
    """True for ``localhost``, ``127.x.y.z`` and ``[::1]``, with or without ``:PORT``."""
    host = address.rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.lower().rstrip(".")
    if host in ("localhost", "::1") or host.endswith(".localhost"):
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts)


class MyOrdersResponse(Struct, frozen=True, gc=False):
    """``GET /v1/my_orders``."""

    orders: list[Order] = []
    code: int = 0
    limit: int | UnsetType = UNSET


# --------------------------------------------------------------------------- wallets, fees


class Wallet(Struct, frozen=True, gc=False):
    """A wallet of the caller. ``balance`` is None on legacy wallets."""

    name: str
    deposit: str | None = None
    balance: Number | None = None
    withdrawal_fee: Number | None = None


class WalletsResponse(Struct, frozen=True, gc=False):
    """``GET /v1/wallets``."""

    wallets: list[Wallet] = []
    code: int = 0


class RenterFees(Struct, frozen=True, gc=False):
    """``GET /v1/renter_fees``: percentage fees and one-off creation fees per order type.

    ``renter_fees`` is {"on_demand": {"base": {currency: percent}}, "spot": {...}};
    ``creation_fees`` is {"on_demand": {currency: amount}, "spot": {...}}.
    """

    renter_fees: dict[str, dict[str, dict[str, Number]]] = {}
    creation_fees: dict[str, dict[str, Number]] = {}
    code: int = 0

    def fee_percent(self, order_type: str, currency: str) -> float:
        """The renter fee in percent for ``order_type`` ("on-demand"/"spot") and ``currency``."""
        table = self.renter_fees.get(order_type.replace("-", "_"), {}).get("base", {})
        return float(table.get(currency_key(currency), 0))

    def creation_fee(self, order_type: str, currency: str) -> float:
        """The one-off creation fee for ``order_type`` in ``currency``."""
        table = self.creation_fees.get(order_type.replace("-", "_"), {})
        return float(table.get(currency_key(currency), 0))


class PohBalance(Struct, frozen=True, gc=False):
    """``GET /v1/poh_balance``. Decision: ``{"balance": CLORE amount, "code": 0}``."""

    balance: Number | None = None
    code: int = 0


# --------------------------------------------------------------------------- host side


class MyServer(Struct, frozen=True, gc=False):
    """One of the caller's hosted servers (``my_servers``); older records lack ``id``."""

    name: str = ""
    id: int | None = None
    connected: bool = False
    visibility: str = "hidden"
    pricing: dict[str, Number] = {}
    min_spot_pricing: dict[str, Number] = {}
    online: bool = False
    mrl: Number | UnsetType = UNSET
    specs: Specs | None = None


class MyServersResponse(Struct, frozen=True, gc=False):
    """``GET /v1/my_servers``."""

    servers: list[MyServer] = []
    limit: int | UnsetType = UNSET
    code: int = 0


class ServerConfig(Struct, frozen=True, gc=False):
    """``server_config``'s ``config``. ``mrl`` is in **hours**; ``rental_status`` 0/1/2."""

    name: str = ""
    id: int | None = None
    connected: bool = False
    visibility: str = "hidden"
    pricing: dict[str, Number] = {}
    spot_pricing: dict[str, Number] = {}
    mrl: Number = 0
    online: bool = False
    initialized: bool = True
    rental_status: int = 0
    specs: Specs | None = None

    @property
    def max_rental(self) -> timedelta:
        """Maximum rental length (``mrl`` is hours in ``server_config``)."""
        return timedelta(hours=float(self.mrl))


class ServerConfigResponse(Struct, frozen=True, gc=False):
    """``GET /v1/server_config`` (a GET with a JSON body)."""

    config: ServerConfig | None = None
    creation_completed: bool = True
    code: int = 0
