"""The control plane under ``/_sandbox/``: reset, users, time, faults, servers, market,
and the orders' machines (logs, access faults, what runs where).

For tests and demos; it needs no key and is never rate limited. Every answer is a JSON
object with an integer ``code`` like the API's (0 on success, 2 for a bad body, 4 for an
unknown path), except ``openapi.json``, which is the OpenAPI document itself.
"""

from __future__ import annotations

import math
import re
from typing import Any, Protocol

import msgspec
from msgspec import UNSET, UnsetType

from clore._facts import ENDPOINTS
from clore.sandbox.backend.errors import invalid_input
from clore.sandbox.dispatch import SandboxRequest, SandboxResponse, json_response
from clore.sandbox.faults import FAULTS

__all__ = ["Control", "ControlTarget"]

_DIGITS = re.compile(r"[0-9]{1,18}")  # fullmatch: ASCII only ("²".isdigit()), no "1\n"

_encode = msgspec.json.encode


class ControlTarget(Protocol):
    """What the control plane drives (``clore.sandbox.Sandbox``)."""

    def reset(self) -> None:
        """Back to the seed state."""
        ...

    def create_user(
        self, name: str, balances: dict[str, float] | None = None, servers: list[int] | None = None
    ) -> tuple[str, int]:
        """Add a user; returns (api_key, user_id)."""
        ...

    def advance(self, seconds: float) -> float:
        """Move the clock; returns the new time."""
        ...

    def inject_fault(
        self, endpoint: str, fault: str, count: int = 1, *, seconds: float | None = None
    ) -> None:
        """Make the next ``count`` calls of ``endpoint`` fail with ``fault`` (``seconds``:
        the timed faults' Retry-After or delay)."""
        ...

    def faults(self) -> list[tuple[str, str, int]]:
        """Queued faults."""
        ...

    def clear_faults(self) -> None:
        """Drop queued faults."""
        ...

    def set_server(
        self,
        server_id: int,
        price: dict[str, Any] | None = None,
        rented: bool | None = None,
        online: bool | None = None,
        *,
        visible: bool | None = None,
        end_outbid: bool | None = None,
        delivers: dict[str, Any] | UnsetType | None = UNSET,
    ) -> None:
        """Change a server (``delivers``: what its machines report)."""
        ...

    def order_logs(self, order_id: int, limit: int = 64 * 1024) -> str:
        """The newest ``limit`` bytes of an order's command output."""
        ...

    def set_access_fault(self, order_id: int, fault: str | None, seconds: float = 0.0) -> None:
        """Make an order's SSH refuse, delay or drop connections (None clears)."""
        ...

    def machines_info(self) -> dict[str, Any]:
        """Where the machines run, their isolation, the orders running one."""
        ...

    def market_tick(self, count: int = 1) -> list[str]:
        """Run market events."""
        ...

    def info(self) -> dict[str, Any]:
        """A summary of the sandbox."""
        ...

    def openapi(self) -> bytes:
        """The OpenAPI document, encoded."""
        ...


class UsersBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    balances: dict[str, float] = {}
    servers: list[int] = []


class AdvanceBody(msgspec.Struct, forbid_unknown_fields=True):
    seconds: float


class FaultBody(msgspec.Struct, forbid_unknown_fields=True):
    endpoint: str
    fault: str
    count: int = 1
    seconds: float | None = None


class ServerBody(msgspec.Struct, forbid_unknown_fields=True):
    price: dict[str, Any] | None = None
    rented: bool | None = None
    online: bool | None = None
    visible: bool | None = None
    end_outbid: bool | None = None
    delivers: dict[str, Any] | UnsetType | None = UNSET


class AccessBody(msgspec.Struct, forbid_unknown_fields=True):
    fault: str | None
    seconds: float = 0.0


class TickBody(msgspec.Struct, forbid_unknown_fields=True):
    count: int = 1


def _body(request: SandboxRequest, kind: type[Any], *, optional: bool = False) -> Any:
    raw = request.body if request.body.strip() else (b"{}" if optional else b"")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:
        raise invalid_input(f"{request.path}: {exc}") from None


def _ok(**fields: Any) -> SandboxResponse:
    return json_response(_encode({"code": 0, **fields}))


class Control:
    """Answers ``/_sandbox/...`` requests against a ``ControlTarget``."""

    def __init__(self, target: ControlTarget) -> None:
        self.target = target

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Route one control-plane request (domain errors propagate to the dispatcher)."""
        route = request.path[len("/_sandbox") :].rstrip("/")
        method = request.method
        if (method, route) == ("GET", "/openapi.json"):
            return json_response(self.target.openapi())
        if (method, route) == ("GET", "/info"):
            return _ok(**self.target.info())
        if (method, route) == ("POST", "/reset"):
            self.target.reset()
            return _ok()
        if (method, route) == ("POST", "/users"):
            return self._users(_body(request, UsersBody))
        if (method, route) == ("POST", "/advance"):
            return self._advance(_body(request, AdvanceBody))
        if route == "/faults":
            return self._faults(method, request)
        if (method, route) == ("POST", "/market/tick"):
            tick = _body(request, TickBody, optional=True)
            if not 1 <= tick.count <= 1000:
                raise invalid_input("count: 1 to 1000")
            return _ok(events=self.target.market_tick(tick.count))
        if method == "POST" and route.startswith("/servers/"):
            return self._server(route[len("/servers/") :], _body(request, ServerBody))
        if (method, route) == ("GET", "/machines"):
            return _ok(**self.target.machines_info())
        if route.startswith("/orders/"):
            return self._order(method, route[len("/orders/") :], request)
        return json_response(b'{"code":4}')

    def _order(self, method: str, rest: str, request: SandboxRequest) -> SandboxResponse:
        raw_id, _, what = rest.partition("/")
        if not _DIGITS.fullmatch(raw_id):
            raise invalid_input("order id: not a number")
        order_id = int(raw_id)
        if (method, what) == ("GET", "logs"):
            raw_limit = request.query.get("limit", str(64 * 1024))
            if not _DIGITS.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= 1 << 20:
                raise invalid_input("limit: 1 to 1048576 bytes")
            log = self.target.order_logs(order_id, int(raw_limit))
            return _ok(order=order_id, log=log)
        if (method, what) == ("POST", "access"):
            body = _body(request, AccessBody)
            if not (math.isfinite(body.seconds) and 0 <= body.seconds <= 3600):
                raise invalid_input("seconds: 0 to 3600")
            if body.fault == "delay" and body.seconds <= 0:
                raise invalid_input("seconds: a delay needs seconds > 0")
            self.target.set_access_fault(order_id, body.fault, body.seconds)
            return _ok(order=order_id, fault=body.fault, seconds=body.seconds)
        return json_response(b'{"code":4}')

    def _users(self, body: UsersBody) -> SandboxResponse:
        for currency, amount in body.balances.items():
            if not math.isfinite(amount):
                raise invalid_input(f"balances.{currency}: not a finite number")
        key, user_id = self.target.create_user(body.name, dict(body.balances), list(body.servers))
        return _ok(api_key=key, user_id=user_id)

    def _advance(self, body: AdvanceBody) -> SandboxResponse:
        if not (math.isfinite(body.seconds) and 0 <= body.seconds <= 10 * 365 * 86400):
            raise invalid_input("seconds: 0 to ten years")
        return _ok(now=self.target.advance(body.seconds))

    def _faults(self, method: str, request: SandboxRequest) -> SandboxResponse:
        if method == "GET":
            listed = [
                {"endpoint": e, "fault": f, "remaining": n} for e, f, n in self.target.faults()
            ]
            return _ok(faults=listed)
        if method == "DELETE":
            self.target.clear_faults()
            return _ok()
        if method != "POST":
            return json_response(b'{"code":4}')
        body = _body(request, FaultBody)
        endpoint = body.endpoint.removeprefix("/v1/").removeprefix("/")
        if endpoint not in ENDPOINTS:
            raise invalid_input(f"endpoint: unknown endpoint {body.endpoint!r}")
        if body.fault not in FAULTS:
            raise invalid_input(f"fault: one of {', '.join(FAULTS)}")
        if not 1 <= body.count <= 100000:
            raise invalid_input("count: 1 to 100000")
        self.target.inject_fault(endpoint, body.fault, body.count, seconds=body.seconds)
        return _ok()

    def _server(self, raw_id: str, body: ServerBody) -> SandboxResponse:
        if not _DIGITS.fullmatch(raw_id):
            raise invalid_input("server id: not a number")
        self.target.set_server(
            int(raw_id),
            price=body.price,
            rented=body.rented,
            online=body.online,
            visible=body.visible,
            end_outbid=body.end_outbid,
            delivers=body.delivers,
        )
        return _ok()
