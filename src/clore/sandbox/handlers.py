"""Handlers: parse a request, call the backend, encode the answer. No domain logic, no SQL.

One method per endpoint, named after it. Bodies are decoded with the SDK's request
structs (``clore._wire``) and answers encoded with its response structs, so the sandbox
and the SDK cannot disagree on a field name. The 2 MB marketplace is served from cached
bytes, re-encoded per server when the backend reports a change.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from clore._wire import (
    CancelOrderRequest,
    CreateOrderRequest,
    MyOrdersResponse,
    MyServer,
    MyServersResponse,
    Order,
    PohBalance,
    RenterFees,
    Server,
    ServerConfig,
    ServerConfigRequest,
    ServerConfigResponse,
    SetSpotPriceRequest,
    SpotMarket,
    SpotMarketplaceResponse,
    SpotOffer,
    SpotServer,
    Wallet,
    WalletsResponse,
)
from clore.sandbox.backend import Backend
from clore.sandbox.backend.errors import invalid_input
from clore.sandbox.backend.records import ServerRec
from clore.sandbox.backend.rules import CURRENCY_RATES_USD, MY_SERVERS_LIMIT

__all__ = ["OK", "Call", "Handlers"]

# ASCII only ("²".isdigit() is True); up to 19 digits, as MAX_ID (2^63-1) has; the
# backend refuses a larger number as out of range.
_DIGITS = re.compile(r"[0-9]{1,19}")

OK = b'{"code":0}'

_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode
_create_order = msgspec.json.Decoder(CreateOrderRequest).decode
_cancel_order = msgspec.json.Decoder(CancelOrderRequest).decode
_set_spot_price = msgspec.json.Decoder(SetSpotPriceRequest).decode
_server_config = msgspec.json.Decoder(ServerConfigRequest).decode
_server_record = msgspec.json.Decoder(Server, strict=False).decode

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


@dataclass(frozen=True)
class Call:
    """What a handler sees of a request: the caller, the query and the raw body."""

    user_id: int | None
    query: Mapping[str, str]
    body: bytes


def _number(value: float) -> float | int:
    """Whole numbers as ints, as the real API writes hours and seconds."""
    return int(value) if float(value).is_integer() else value


def _parse(decode: Any, body: bytes, what: str) -> Any:
    try:
        return decode(body)
    except msgspec.DecodeError as exc:
        raise invalid_input(f"{what}: {exc}") from None


def _user(call: Call) -> int:
    if call.user_id is None:  # the dispatcher only routes private endpoints with a user
        raise invalid_input("no caller")
    return call.user_id


class Handlers:
    """The endpoints of API v1 over one ``Backend``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._servers: dict[int, tuple[bytes, Server]] = {}
        self._cache_lock = threading.Lock()
        self._rev = -1
        self._fragments: dict[int, tuple[int, bytes | None]] = {}
        self._listing = b"[]"
        self._anonymous = b""

    # ---- helpers ----------------------------------------------------------------------
    def _record(self, server: ServerRec) -> Server:
        """The decoded seed record of a server (static fields: specs, rating, ...)."""
        cached = self._servers.get(server.id)
        if cached is None or cached[0] != server.record:
            cached = (server.record, _server_record(server.record))
            self._servers[server.id] = cached
        return cached[1]

    @staticmethod
    def _listing_fragment(server: ServerRec) -> bytes | None:
        if not server.listed:
            return None
        record = _decode_any(server.record)
        record["owner"] = server.owner
        record["mrl"] = _number(server.mrl)
        price = record.get("price")
        if not isinstance(price, dict):
            price = record["price"] = {}
        price["on_demand"] = server.on_demand
        price["spot"] = server.spot
        record["rented"] = server.rented
        record["allowed_coins"] = server.allowed_coins
        return _encode(record)

    # ---- public market ------------------------------------------------------------------
    def marketplace(self, call: Call) -> bytes:
        """``GET /v1/marketplace``: every listed server, and the caller's own server ids."""
        with self._cache_lock:
            view = self.backend.marketplace(call.user_id, self._rev)
            if view.full:
                self._fragments = {}
            if view.full or view.changed:
                for server in view.changed:
                    self._fragments[server.id] = (server.pos, self._listing_fragment(server))
                ordered = sorted(self._fragments.values(), key=lambda item: item[0])
                self._listing = b"[" + b",".join(f for _, f in ordered if f is not None) + b"]"
                self._anonymous = b""
            self._rev = view.rev
            if not view.my_servers:
                if not self._anonymous:
                    self._anonymous = b'{"servers":' + self._listing + b',"my_servers":[],"code":0}'
                return self._anonymous
            mine = _encode(view.my_servers)
            return b'{"servers":' + self._listing + b',"my_servers":' + mine + b',"code":0}'

    def spot_marketplace(self, call: Call) -> bytes:
        """``GET /v1/spot_marketplace?market=ID``: offers on one server."""
        raw = call.query.get("market", "")
        if not _DIGITS.fullmatch(raw.strip()):
            raise invalid_input("market: a server id is required")
        view = self.backend.spot_marketplace(call.user_id, int(raw))
        if view is None:
            return _encode(SpotMarketplaceResponse(market=None, exists=False))
        server = view.server
        offers = [
            SpotOffer(offer_id=o.id, bid=o.price, active=o.active, my=mine, currency=o.currency)
            for o, mine in view.offers
        ]
        market = SpotMarket(
            offers=offers,
            server=SpotServer(
                min_pricing=server.spot,
                mrl=_number(float(server.mrl) * 3600.0),
                visibility="public" if server.visible else "hidden",
                online=server.online,
            ),
            currency_rates_in_usd=dict(CURRENCY_RATES_USD),
        )
        return _encode(SpotMarketplaceResponse(market=market, exists=True))

    def renter_fees(self, call: Call) -> bytes:
        """``GET /v1/renter_fees``."""
        fees = self.backend.renter_fees()
        return _encode(
            RenterFees(renter_fees=fees["renter_fees"], creation_fees=fees["creation_fees"])
        )

    # ---- renting --------------------------------------------------------------------------
    def my_orders(self, call: Call) -> bytes:
        """``GET /v1/my_orders?return_completed=true|false``."""
        flag = call.query.get("return_completed", "false").strip().lower()
        if flag not in _TRUE and flag not in _FALSE:
            raise invalid_input("return_completed: expected true or false")
        views = self.backend.my_orders(_user(call), flag in _TRUE)
        out = []
        for view in views:
            o, record = view.order, self._record(view.server)
            out.append(
                Order(
                    id=o.id,
                    si=o.server_id,
                    mrl=_number(o.mrl),
                    price=o.price,
                    currency=o.currency,
                    image=o.image,
                    spot=o.spot,
                    ct=_number(o.ct),
                    expired=o.ended,
                    pub_cluster=o.pub_cluster,
                    tcp_ports=o.tcp_ports,
                    http_port=o.http_port,
                    http_pub=o.http_pub,
                    creation_fee=o.creation_fee,
                    spend=view.spend,
                    online=view.online,
                    specs=record.specs,
                    reliability=record.reliability,
                    owner=view.server.owner,
                    cuda_version=record.cuda_version,
                    rating=record.rating,
                )
            )
        return _encode(MyOrdersResponse(orders=out))

    def create_order(self, call: Call) -> bytes:
        """``POST /v1/create_order``: answers ``{"code": 0}`` only, never the order id."""
        self.backend.create_order(_user(call), _parse(_create_order, call.body, "create_order"))
        return OK

    def cancel_order(self, call: Call) -> bytes:
        """``POST /v1/cancel_order``."""
        self.backend.cancel_order(_user(call), _parse(_cancel_order, call.body, "cancel_order"))
        return OK

    def set_spot_price(self, call: Call) -> bytes:
        """``POST /v1/set_spot_price``."""
        req = _parse(_set_spot_price, call.body, "set_spot_price")
        self.backend.set_spot_price(_user(call), req)
        return OK

    def wallets(self, call: Call) -> bytes:
        """``GET /v1/wallets``."""
        wallets = [
            Wallet(
                name=w.currency,
                deposit=w.deposit,
                balance=w.balance,
                withdrawal_fee=w.withdrawal_fee,
            )
            for w in self.backend.wallets(_user(call))
        ]
        return _encode(WalletsResponse(wallets=wallets))

    def poh_balance(self, call: Call) -> bytes:
        """``GET /v1/poh_balance``."""
        return _encode(PohBalance(balance=self.backend.poh_balance(_user(call))))

    # ---- hosting ------------------------------------------------------------------------------
    def my_servers(self, call: Call) -> bytes:
        """``GET /v1/my_servers``."""
        servers = []
        for server in self.backend.my_servers(_user(call)):
            servers.append(
                MyServer(
                    name=server.name,
                    id=server.id,
                    connected=server.online,
                    visibility="public" if server.visible else "hidden",
                    pricing=server.on_demand,
                    min_spot_pricing=server.spot,
                    online=server.online,
                    specs=self._record(server).specs,
                )
            )
        return _encode(MyServersResponse(servers=servers, limit=MY_SERVERS_LIMIT))

    def server_config(self, call: Call) -> bytes:
        """``GET /v1/server_config`` with body ``{"server_name": ...}`` (or the query)."""
        if call.body.strip():
            name = _parse(_server_config, call.body, "server_config").server_name
        elif "server_name" in call.query:
            name = call.query["server_name"]
        else:
            raise invalid_input("server_name: required")
        server, status = self.backend.server_config(_user(call), name)
        config = ServerConfig(
            name=server.name,
            id=server.id,
            connected=server.online,
            visibility="public" if server.visible else "hidden",
            pricing=server.on_demand,
            spot_pricing=server.spot,
            mrl=_number(server.mrl),
            online=server.online,
            initialized=True,
            rental_status=status,
            specs=self._record(server).specs,
        )
        return _encode(ServerConfigResponse(config=config, creation_completed=True))

    def set_server_settings(self, call: Call) -> bytes:
        """``POST /v1/set_server_settings`` (legacy or per-currency form)."""
        body = _parse(_decode_any, call.body, "set_server_settings")
        if not isinstance(body, dict):
            raise invalid_input("set_server_settings: expected a JSON object")
        self.backend.set_server_settings(_user(call), body)
        return OK
