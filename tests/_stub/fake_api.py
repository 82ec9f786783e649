"""An in-memory Clore.ai API for unit tests, served through ``httpx.MockTransport``.

It enforces the per-key rate limits on an injected clock (1 s between accepted
requests, 5 s between accepted create_order calls; rejected requests do not move the
window), keeps orders, and injects faults: drop the answer after the server committed,
time out, answer 5xx, code 1, 429 with Retry-After, or a body that is not JSON.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from clore._clock import ManualClock

KEY = "test-key-0123456789abcdef"
BASE_URL = "https://api.test/v1"

#: Faults that make the server act and then lose the answer.
AFTER_COMMIT = {
    "drop_after_commit",
    "timeout_after_commit",
    "500_after_commit",
    "garbled_after_commit",
}


@dataclass
class Seen:
    """One request as the fake received it."""

    endpoint: str
    method: str
    headers: dict[str, str]
    params: dict[str, str]
    body: Any
    at: float
    status: int = 0


@dataclass
class FakeAPI:
    """The fake server. ``handler`` is what MockTransport calls."""

    clock: ManualClock = field(default_factory=ManualClock)
    rate_limit: bool = True
    keys: tuple[str, ...] = (KEY,)
    provision_delay: float = 30.0
    servers: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    faults: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    responses: dict[str, Any] = field(default_factory=dict)
    rejected: int = 0
    next_id: int = 1000
    hide_new: int = 0  # my_orders answers that still omit orders made by create_order
    extra_headers: dict[str, str] = field(default_factory=dict)  # sent with every answer
    _last: dict[str, float] = field(default_factory=dict)
    _last_create: dict[str, float] = field(default_factory=dict)
    _lowered: dict[int, float] = field(default_factory=dict)
    _fresh: set[int] = field(default_factory=set)

    # ---- set-up ----------------------------------------------------------------------

    def inject(self, endpoint: str, *faults: str) -> None:
        """Queue faults for the next requests to ``endpoint`` (one per request)."""
        self.faults[endpoint].extend(faults)

    def add_order(self, **fields: Any) -> dict[str, Any]:
        """Create an order directly (as if rented earlier)."""
        self.next_id += 1
        order = {
            "id": self.next_id,
            "si": 1,
            "mrl": 86400,
            "price": 0.0001,
            "currency": "bitcoin",
            "image": "cloreai/ubuntu22.04-cuda12",
            "spot": False,
            "ct": self.clock.time(),
            "expired": False,
            **fields,
        }
        self.orders.append(order)
        return order

    def created(self) -> list[dict[str, Any]]:
        """Orders made through create_order."""
        return [o for o in self.orders if o["id"] in self._fresh]

    def sent(self, endpoint: str | None = None) -> list[Seen]:
        """Requests received (for one endpoint, or all)."""
        return [s for s in self.seen if endpoint is None or s.endpoint == endpoint]

    # ---- transport -------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def handler(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        raw = request.content
        body = json.loads(raw) if raw else None
        seen = Seen(
            endpoint,
            request.method,
            dict(request.headers),
            dict(request.url.params),
            body,
            self.clock.time(),
        )
        self.seen.append(seen)
        fault = self.faults[endpoint].popleft() if self.faults[endpoint] else None
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "connect_timeout":
            raise httpx.ConnectTimeout("timed out connecting", request=request)
        if fault == "read_timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "500":
            return self._reply(seen, 500, b"<html>Internal Server Error</html>")
        if fault == "502_json":
            return self._reply(seen, 502, b'{"code": 0}')
        if fault == "not_json":
            return self._reply(seen, 200, b"<html>Cloudflare</html>")
        if fault == "code1":
            return self._reply(seen, 200, {"code": 1})
        if fault == "code5":
            return self._reply(seen, 200, {"code": 5})
        if fault is not None and fault.startswith("429"):
            _, _, after = fault.partition(":")
            headers = {"Retry-After": after} if after else {}
            return self._reply(seen, 429, {"code": 5}, headers)
        if fault == "401":
            return self._reply(seen, 401, {"code": 3})
        key = request.headers.get("auth", "")
        if endpoint != "marketplace" and key not in self.keys:
            return self._reply(seen, 401 if key else 200, {"code": 3})
        if self.rate_limit and not self._admit(key, endpoint):
            self.rejected += 1
            return self._reply(seen, 429, {"code": 5})
        result = self._dispatch(endpoint, seen, fault)
        if fault == "drop_after_commit":
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        if fault == "timeout_after_commit":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "500_after_commit":
            return self._reply(seen, 500, b"Bad Gateway")
        if fault == "garbled_after_commit":
            return self._reply(seen, 200, b"<html>a proxy page</html>")
        return self._reply(seen, 200, result)

    def _reply(
        self, seen: Seen, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        seen.status = status
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(
            status, content=content, headers={**self.extra_headers, **(headers or {})}
        )

    def _admit(self, key: str, endpoint: str) -> bool:
        now = self.clock.time()
        last = self._last.get(key)
        if last is not None and now - last < 1.0:
            return False
        if endpoint == "create_order":
            last_create = self._last_create.get(key)
            if last_create is not None and now - last_create < 5.0:
                return False
            self._last_create[key] = now
        self._last[key] = now
        return True

    # ---- endpoints -------------------------------------------------------------------

    def _dispatch(self, endpoint: str, seen: Seen, fault: str | None) -> Any:
        if endpoint in self.responses:
            return self.responses[endpoint]
        method = getattr(self, f"_ep_{endpoint}", None)
        if method is None:
            return {"code": 4}
        return method(seen, fault)

    def _public(self, order: dict[str, Any]) -> dict[str, Any]:
        out = dict(order)
        ready = self.clock.time() - order["ct"] >= self.provision_delay
        out["pub_cluster"] = ["n1.de.clorecloud.net"] if ready else []
        out["tcp_ports"] = [f"22:{20000 + order['id'] % 1000}"] if ready else []
        return out

    def _ep_marketplace(self, seen: Seen, fault: str | None) -> Any:
        return {"servers": self.servers, "my_servers": [], "code": 0}

    def _ep_my_orders(self, seen: Seen, fault: str | None) -> Any:
        completed = seen.params.get("return_completed") == "true"
        hidden = self._fresh if self.hide_new > 0 else set()
        self.hide_new = max(0, self.hide_new - 1)
        orders = [
            self._public(o)
            for o in self.orders
            if (completed or not o["expired"]) and o["id"] not in hidden
        ]
        return {"orders": orders, "code": 0}

    def _ep_create_order(self, seen: Seen, fault: str | None) -> Any:
        body = seen.body
        if fault == "phantom":
            return {"code": 0}  # claims success, creates nothing
        server = body["renting_server"]
        taken = [o for o in self.orders if o["si"] == server and not o["expired"] and not o["spot"]]
        if taken and body.get("type") != "spot":
            return {"code": 6, "error": "server-already-rented"}
        order = self.add_order(
            si=server,
            image=body["image"],
            currency=body["currency"],
            spot=body.get("type") == "spot",
            price=body.get("spotprice") or 0.0001,
        )
        self._fresh.add(order["id"])
        return {"code": 0}

    def _ep_cancel_order(self, seen: Seen, fault: str | None) -> Any:
        for order in self.orders:
            if order["id"] == seen.body["id"]:
                order["expired"] = True
                return {"code": 0}
        return {"code": 6, "error": "order-not-found"}

    def _ep_set_spot_price(self, seen: Seen, fault: str | None) -> Any:
        order_id, price = seen.body["order_id"], seen.body["desired_price"]
        order = next(o for o in self.orders if o["id"] == order_id)
        now = self.clock.time()
        if price < order["price"]:
            since = now - self._lowered.get(order_id, -1e12)
            if since < 600:
                return {
                    "code": 6,
                    "error": "can_lower_every_600_seconds",
                    "time_to_lowering": int(600 - since),
                }
            self._lowered[order_id] = now
        order["price"] = price
        return {"code": 0}

    def _ep_spot_marketplace(self, seen: Seen, fault: str | None) -> Any:
        sid = int(seen.params["market"])
        if sid != 1:
            return {"exists": False, "code": 0}
        offers = [
            {"offer_id": o["id"], "bid": o["price"], "active": True, "my": True}
            for o in self.orders
            if o["si"] == sid and o["spot"] and not o["expired"]
        ]
        return {
            "market": {
                "offers": offers,
                "server": {"min_pricing": {"bitcoin": 0.000001}, "mrl": 262800},
                "currency_rates_in_usd": {"bitcoin": 68022.87, "CLORE-Blockchain": 0.0027},
            },
            "exists": True,
            "code": 0,
        }

    def _ep_wallets(self, seen: Seen, fault: str | None) -> Any:
        return {
            "wallets": [
                {"name": "bitcoin", "deposit": "bc1q", "balance": 0.0419, "withdrawal_fee": 5e-5},
                {"name": "CLORE-Blockchain", "deposit": "AXx", "balance": None},
            ],
            "code": 0,
        }

    def _ep_my_servers(self, seen: Seen, fault: str | None) -> Any:
        return {
            "servers": [{"id": 7, "name": "rig-1", "connected": True, "pricing": {"bitcoin": 1}}],
            "limit": 16,
            "code": 0,
        }

    def _ep_server_config(self, seen: Seen, fault: str | None) -> Any:
        if seen.body.get("server_name") != "rig-1":
            return {"code": 6, "error": "server-not-found"}
        return {
            "config": {"name": "rig-1", "id": 7, "mrl": 72, "rental_status": 0},
            "creation_completed": True,
            "code": 0,
        }

    def _ep_set_server_settings(self, seen: Seen, fault: str | None) -> Any:
        return {"code": 0}

    def _ep_renter_fees(self, seen: Seen, fault: str | None) -> Any:
        return {
            "renter_fees": {
                "on_demand": {"base": {"bitcoin": 10}},
                "spot": {"base": {"bitcoin": 2.5}},
            },
            "creation_fees": {"on_demand": {"bitcoin": 0.00001}, "spot": {"bitcoin": 0}},
            "code": 0,
        }

    def _ep_poh_balance(self, seen: Seen, fault: str | None) -> Any:
        return {"balance": "123.5", "code": 0}
