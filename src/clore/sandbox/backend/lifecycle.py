"""Order lifecycle shared by every entry point: ranking spot offers, ending, provisioning.

``rerank`` is the one place that decides, for a server, which orders run: a live on-demand
order takes the server (and sets ``rented``), otherwise the highest spot bid (compared in
USD; the older offer wins a tie) is active and every other offer waits. It also decides
who is billed: running orders of real users on an online server.
"""

from __future__ import annotations

import hashlib

from clore.sandbox.backend.billing import accrue
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
    """The proxy host a server's containers are reached through (three per region)."""
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


def provision(repo: Repository, order: OrderRec, server: ServerRec) -> None:
    """Give a started order its public endpoints: cluster host, TCP ports, HTTPS proxy."""
    order.provisioned = True
    if not _billable(order):
        # Other renters' containers are not observable; they hold no public ports.
        repo.update_order(order)
        return
    ports = order.ports or {"22": "tcp"}
    tcp: list[str] = []
    for inner, proto in sorted(ports.items(), key=lambda item: int(item[0])):
        if proto == "http":
            order.http_port = inner
            digest = hashlib.sha256(f"{order.id}:{server.id}".encode()).hexdigest()[:20]
            order.http_pub = f"{digest}.clorecloud.net"
        else:
            tcp.append(f"{inner}:{_claim_port(repo, server.cluster, order.id)}")
    order.pub_cluster = [server.cluster]
    order.tcp_ports = tcp
    repo.update_order(order)


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
