"""Order lifecycle shared by every entry point: ranking spot offers, ending, provisioning.

``rerank`` is the one place that decides, for a server, which orders run: a live on-demand
order takes the server (and sets ``rented``), otherwise the highest spot bid (compared in
USD; the older offer wins a tie) is active and every other offer waits. It also decides
who is billed: running orders of real users on an online server.
"""

from __future__ import annotations

from clore.sandbox.backend.billing import accrue
from clore.sandbox.backend.machines import LOOPBACK, Assigned, Endpoints
from clore.sandbox.backend.records import OrderRec, ServerRec
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import MARKET_USER_ID, PROVISIONING_DELAY, fee_rate, to_usd

__all__ = ["cluster_for", "end_order", "market_order", "provision", "rerank"]

_FIRST_PORT = 10000
_LAST_PORT = 65000

_REGIONS = {
    "us": {"US", "CA", "MX", "BR", "AR", "CL"},
    "asia": {"KR", "CN", "HK", "JP", "TW", "SG", "IN", "TH", "VN", "MY", "ID", "PH"},
    "au": {"AU", "NZ"},
}


def cluster_for(server_id: int, country: str) -> str:
    """The proxy host the real Clore reaches a server's containers through (three per
    region); kept in the server's record, never handed out: sandbox orders are reached on
    loopback."""
    region = next((name for name, codes in _REGIONS.items() if country in codes), "eu")
    return f"n{1 + server_id % 3}.{region}.clorecloud.net"


def _billable(order: OrderRec) -> bool:
    return order.user_id != MARKET_USER_ID


def _bid_key(order: OrderRec) -> tuple[float, int]:
    return (to_usd(order.price, order.currency), -order.id)


def market_order(
    server: ServerRec,
    *,
    spot: bool,
    currency: str,
    price: float,
    ct: float,
    end_at: float,
    billed_until: float,
    active: bool = False,
) -> OrderRec:
    """A new order of another renter (the market user) on ``server``: never billed, and
    provisioned from the start without public endpoints. The caller inserts it."""
    return OrderRec(
        id=0,
        user_id=MARKET_USER_ID,
        server_id=server.id,
        spot=spot,
        currency=currency,
        price=price,
        fee_rate=fee_rate(spot),
        image="market",
        ct=ct,
        mrl=float(server.mrl) * 3600.0,
        end_at=end_at,
        creation_fee=0.0,
        billed_until=billed_until,
        active=active,
        provisioned=True,
    )


def end_order(
    repo: Repository,
    order: OrderRec,
    t: float,
    reason: str,
    *,
    issue: str | None = None,
    rerank_server: bool = True,
) -> None:
    """End a live order at ``t``: charge it up to ``t``, free its ports, re-rank its server."""
    accrue(repo, order, t)
    order.ended = True
    order.ended_at = t
    order.end_reason = reason
    order.billing = False
    order.active = False
    if issue is not None:
        order.issue = issue
    repo.update_order(order)
    repo.release_ports(order.id)
    if rerank_server:
        server = repo.get_server(order.server_id)
        if server is not None:
            rerank(repo, server, t)


def rerank(repo: Repository, server: ServerRec, t: float) -> None:
    """Recompute which orders on ``server`` run and bill at ``t``; save what changed."""
    live = repo.live_orders_on(server.id)
    on_demand = [o for o in live if not o.spot]
    offers = [o for o in live if o.spot]
    winner = None if on_demand or not offers else max(offers, key=_bid_key)
    for order in on_demand:
        _set_running(repo, order, server, t, active=True)
    for offer in offers:
        active = offer is winner
        if not active and server.end_outbid:
            # The host chose to end outbid offers instead of pausing them.
            end_order(repo, offer, t, "outbid", rerank_server=False)
            continue
        _set_running(repo, offer, server, t, active=active)
    rented = bool(on_demand)
    if server.rented != rented:
        server.rented = rented
        repo.update_server(server)


def _set_running(
    repo: Repository, order: OrderRec, server: ServerRec, t: float, *, active: bool
) -> None:
    billing = active and server.online and _billable(order)
    start = active and order.ready_at is None and not order.provisioned
    if order.active == active and order.billing == billing and not start:
        return
    accrue(repo, order, t)
    order.active = active
    order.billing = billing
    if start:
        order.ready_at = t + PROVISIONING_DELAY
    repo.update_order(order)


def provision(
    repo: Repository, order: OrderRec, server: ServerRec, endpoints: Endpoints | None = None
) -> None:
    """Give a started order its public endpoints: host, TCP ports, HTTP relay.

    ``endpoints`` (the sandbox's machines) picks the host and the ports its machine will
    listen on; without it the order gets loopback ports from the sandbox's own range,
    where nothing listens.
    """
    order.provisioned = True
    if not _billable(order):
        # Other renters' containers are not observable; they hold no public ports.
        repo.update_order(order)
        return
    if endpoints is not None:
        assigned = endpoints.assign(order, server)
    else:
        assigned = _loopback_ports(repo, order)
    order.pub_cluster = [assigned.host]
    order.tcp_ports = assigned.tcp_ports
    order.http_pub = assigned.http_pub
    order.http_port = next((p for p, kind in (order.ports or {}).items() if kind == "http"), None)
    repo.update_order(order)


def _loopback_ports(repo: Repository, order: OrderRec) -> Assigned:
    ports = order.ports or {"22": "tcp"}
    tcp: list[str] = []
    http_pub = None
    for inner, proto in sorted(ports.items(), key=lambda item: int(item[0])):
        public = _claim_port(repo, LOOPBACK, order.id)
        if proto == "http":
            http_pub = f"{LOOPBACK}:{public}"
        else:
            tcp.append(f"{inner}:{public}")
    return Assigned(LOOPBACK, tcp, http_pub)


def _claim_port(repo: Repository, cluster: str, order_id: int) -> int:
    key = f"port:{cluster}"
    port = int(repo.get_meta(key) or _FIRST_PORT)
    for _ in range(_LAST_PORT - _FIRST_PORT + 1):
        candidate = port
        port = _FIRST_PORT if port >= _LAST_PORT else port + 1
        if repo.claim_port(cluster, candidate, order_id):
            repo.set_meta(key, str(port))
            return candidate
    raise RuntimeError(f"no free public port on {cluster}")
