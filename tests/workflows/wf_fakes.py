"""A small in-memory stand-in for ``clore.Clore`` used by the workflow unit tests.

It keeps servers, orders and spot offers, bills on read from a ManualClock, and lets a test
queue exceptions per method (``fail``) and see every call (``calls``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from clore._clock import ManualClock
from clore._errors import (
    ExceededMaxStepError,
    OrderNotFoundError,
    PriceChangedError,
    ServerAlreadyRentedError,
    ServerNotFoundError,
    SpotPriceLoweringTooSoonError,
    TooLowPriceError,
)
from clore._wire import (
    Order,
    Price,
    RenterFees,
    Server,
    Specs,
    SpotMarket,
    SpotOffer,
    SpotServer,
    Wallet,
)


def server(
    sid: int,
    price: float = 0.0001,
    *,
    spot: float | None = None,
    gpu: str = "1x NVIDIA GeForce RTX 4090",
    mrl: float = 24.0,
    rented: bool = False,
) -> Server:
    """A marketplace record with an on-demand (and spot minimum) price in bitcoin per day."""
    return Server(
        id=sid,
        mrl=mrl,
        rented=rented,
        price=Price(on_demand={"bitcoin": price}, spot={"bitcoin": spot or price / 2}),
        specs=Specs(gpu=gpu),
        allowed_coins=["bitcoin"],
    )


class FakeClient:
    """Implements the ``clore.Clore`` methods the workflows call, in memory."""

    def __init__(self, clock: ManualClock, servers: list[Server] | None = None) -> None:
        self.clock = clock
        self.servers: dict[int, Server] = {s.id: s for s in servers or []}
        self.orders: dict[int, dict[str, Any]] = {}
        self.offers: dict[int, list[dict[str, Any]]] = {}  # server id -> other people's bids
        self.wallet_balance: dict[str, float] = {"bitcoin": 1.0}
        # Renter fee percent per order type (the sandbox's are 10 and 2.5); none by default.
        self.fee_percent: dict[str, float] = {"on_demand": 0.0, "spot": 0.0}
        self.calls: list[tuple[float, str, tuple[Any, ...]]] = []
        self.fail: dict[str, list[BaseException]] = {}
        self.after_create: Callable[[Order], None] | None = None
        self.provision_delay = 0.0
        self._next_id = 100
        self._last_lower: dict[int, float] = {}

    # ---- helpers for tests -------------------------------------------------------------

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((self.clock.time(), name, args))
        queue = self.fail.get(name)
        if queue:
            raise queue.pop(0)

    def count(self, name: str) -> int:
        return sum(1 for _, n, _ in self.calls if n == name)

    def set_price(self, sid: int, price: float) -> None:
        old = self.servers[sid]
        self.servers[sid] = server(
            sid, price, spot=old.price_per_day(spot=True), mrl=float(old.mrl)
        )

    def set_rented(self, sid: int, rented: bool = True) -> None:
        old = self.servers[sid]
        self.servers[sid] = Server(
            id=sid,
            mrl=old.mrl,
            rented=rented,
            price=old.price,
            specs=old.specs,
            allowed_coins=old.allowed_coins,
        )

    def end_order(self, order_id: int) -> None:
        raw = self.orders[order_id]
        raw["spend_before"] = self._order(raw).spend
        raw["expired"] = True
        sid = self.orders[order_id]["si"]
        if sid in self.servers:
            self.set_rented(sid, False)

    def _order(self, raw: dict[str, Any]) -> Order:
        running = 0.0 if raw["expired"] else max(0.0, self.clock.time() - raw["billed_from"])
        spend = raw["spend_before"] + raw["price"] * running / 86400.0
        up = self.clock.time() >= raw["ct"] + self.provision_delay
        return Order(
            id=raw["id"],
            si=raw["si"],
            mrl=raw["mrl"],
            price=raw["price"],
            currency=raw["currency"],
            image=raw["image"],
            spot=raw["spot"],
            ct=raw["ct"],
            expired=raw["expired"],
            pub_cluster=raw["pub_cluster"] if up else [],
            tcp_ports=raw["tcp_ports"] if up else [],
            online=raw.get("online", True),
            spend=spend,
            specs=self.servers[raw["si"]].specs if raw["si"] in self.servers else Specs(),
        )

    # ---- the client surface ------------------------------------------------------------

    def marketplace(self) -> list[Server]:
        self._call("marketplace")
        return list(self.servers.values())

    def _tick(self) -> None:
        """End orders that reached ct + mrl, billed up to that moment."""
        now = self.clock.time()
        for raw in self.orders.values():
            end = raw["ct"] + raw["mrl"]
            if not raw["expired"] and now >= end:
                raw["spend_before"] += raw["price"] * (end - raw["billed_from"]) / 86400.0
                raw["expired"] = True
                if raw["si"] in self.servers and not raw["spot"]:
                    self.set_rented(raw["si"], False)

    def my_orders(self, include_completed: bool = False) -> list[Order]:
        self._call("my_orders", include_completed)
        self._tick()
        return [
            self._order(raw)
            for raw in self.orders.values()
            if include_completed or not raw["expired"]
        ]

    def get_order(self, order_id: int) -> Order:
        self._call("get_order", order_id)
        self._tick()
        if order_id not in self.orders:
            raise OrderNotFoundError("no such order", order_id=order_id)
        return self._order(self.orders[order_id])

    def wallets(self) -> list[Wallet]:
        self._call("wallets")
        return [Wallet(name=k, balance=v) for k, v in self.wallet_balance.items()]

    def renter_fees(self) -> RenterFees:
        self._call("renter_fees")
        table = {kind: {"base": {"bitcoin": pct}} for kind, pct in self.fee_percent.items()}
        return RenterFees(renter_fees=table)

    def create_order(
        self,
        server_id: int,
        image: str,
        order_type: str = "on-demand",
        currency: str = "bitcoin",
        spotprice: float | None = None,
        ports: dict[str, str] | None = None,
        ssh_password: str | None = None,
        ssh_key: str | None = None,
        jupyter_token: str | None = None,
        env: dict[str, str] | None = None,
        command: str | None = None,
        required_price: float | None = None,
        autossh_entrypoint: bool | None = None,
    ) -> Order:
        self._call("create_order", server_id, order_type, spotprice, required_price, env, ports)
        srv = self.servers[server_id]
        spot = order_type == "spot"
        if srv.rented and not spot:
            raise ServerAlreadyRentedError(6, "server-already-rented")
        price = srv.price_per_day(currency)
        if required_price is not None and price != required_price:
            raise PriceChangedError(6, "price-changed")
        self._next_id += 1
        oid = self._next_id
        self.orders[oid] = {
            "id": oid,
            "si": server_id,
            "mrl": float(srv.mrl) * 3600,
            "currency": currency,
            "price": spotprice if spot else price,
            "image": image,
            "spot": spot,
            "ct": self.clock.time(),
            "expired": False,
            "pub_cluster": ["n1.example"],
            "tcp_ports": ["22:10022"],
            "spend_before": 0.0,
            "billed_from": self.clock.time(),
            "env": env,
            "ports": ports,
        }
        if not spot:
            self.set_rented(server_id)
        order = self._order(self.orders[oid])
        if self.after_create is not None:
            self.after_create(order)
        return order

    def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        self._call("cancel_order", order_id, issue)
        if order_id not in self.orders:
            raise OrderNotFoundError("no such order", order_id=order_id)
        self.end_order(order_id)

    def spot_marketplace(self, server_id: int) -> SpotMarket:
        self._call("spot_marketplace", server_id)
        if server_id not in self.servers:
            raise ServerNotFoundError("unknown", server_id=server_id)
        bids = [
            (raw["price"], raw["id"], True)
            for raw in self.orders.values()
            if raw["si"] == server_id and raw["spot"] and not raw["expired"]
        ] + [(o["bid"], o["offer_id"], False) for o in self.offers.get(server_id, [])]
        top = max(bids, default=None)
        offers = [
            SpotOffer(offer_id=oid, bid=bid, my=my, active=(bid, oid, my) == top)
            for bid, oid, my in bids
        ]
        minimum = self.servers[server_id].price_per_day(spot=True) or 0.0
        return SpotMarket(
            offers=offers, server=SpotServer(min_pricing={"bitcoin": minimum}, mrl=86400)
        )

    def set_spot_price(self, order_id: int, price: float) -> None:
        self._call("set_spot_price", order_id, price)
        raw = self.orders[order_id]
        old = raw["price"]
        if price < old:
            last = self._last_lower.get(order_id)
            now = self.clock.time()
            if last is not None and now - last < 600:
                raise SpotPriceLoweringTooSoonError(
                    6, "can_lower_every_600_seconds", body={"time_to_lowering": 600 - (now - last)}
                )
            step = round(old * 0.1, 8)
            if old - price > step + 1e-12:
                raise ExceededMaxStepError(6, "exceeded_max_step", body={"max_step": step})
            minimum = self.servers[raw["si"]].price_per_day(spot=True) or 0.0
            if price < minimum:
                raise TooLowPriceError(6, "too_low_price")
            self._last_lower[order_id] = now
        raw["spend_before"] = self._order(raw).spend
        raw["billed_from"] = self.clock.time()
        raw["price"] = price


class ScriptedClock(ManualClock):
    """A ManualClock that runs scheduled actions when a sleep passes their time."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        super().__init__(start)
        self._script: list[tuple[float, int, Callable[[], None]]] = []
        self._script_lock = threading.Lock()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` once time reaches ``when`` (absolute unix seconds)."""
        with self._script_lock:
            self._script.append((when, len(self._script), action))
            self._script.sort(key=lambda item: (item[0], item[1]))

    def after(self, delay: float, action: Callable[[], None]) -> None:
        self.at(self.time() + delay, action)

    def sleep(self, seconds: float) -> None:
        target = self.time() + max(0.0, seconds)
        self.slept.append(seconds)
        while True:
            with self._script_lock:
                if not self._script or self._script[0][0] > target:
                    break
                when, _, action = self._script.pop(0)
            self.set(when)
            action()
        self.set(target)


def run_until(events: Any, kind: str | None = None, *, limit: int = 200) -> list[Any]:
    """Collect events until one of ``kind`` (included) or the generator ends; at most ``limit``."""
    seen = []
    for event in events:
        seen.append(event)
        if kind is not None and event.kind == kind:
            break
        if len(seen) >= limit:
            raise AssertionError(f"no {kind!r} event within {limit}: {[e.kind for e in seen]}")
    return seen
