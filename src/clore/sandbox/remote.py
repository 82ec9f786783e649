"""``control_client``: drive a running sandbox server's ``/_sandbox/`` control plane.

The methods mirror ``Sandbox``'s (``reset``, ``advance``, ``inject_fault``, ...), so code
written against an in-process sandbox works against ``clore sandbox serve`` unchanged.
A non-zero ``code`` raises the SDK's ``APIError`` for it (through the public ``clore``
names: the sandbox imports nothing from the SDK's client side). A server started with a control
token wants it on every control request: pass ``token=`` or set ``CLORE_SANDBOX_TOKEN``.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

import httpx
from msgspec import UNSET, UnsetType

from clore import APIError, ConfigError, UnexpectedResponseError
from clore._facts import TOKEN_HEADER
from clore.sandbox.access import TOKEN_ENV

__all__ = ["ControlClient", "control_client"]


class ControlClient:
    """The control plane of the sandbox whose API lives at ``base_url`` (``.../v1``).

    ``token`` (else env ``CLORE_SANDBOX_TOKEN``) is sent as the ``x-sandbox-token`` header.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        root = base_url.rstrip("/").removesuffix("/v1")
        secret = _token(token)
        headers = {TOKEN_HEADER: secret} if secret else {}
        self._http = httpx.Client(
            base_url=f"{root}/_sandbox", timeout=timeout, transport=transport, headers=headers
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(method, path, json=body)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("code"), int):
            raise UnexpectedResponseError(
                f"sandbox control {path}: not a JSON answer (HTTP {response.status_code})",
                status_code=response.status_code,
            )
        if data["code"] != 0:
            raise APIError.from_response(data, status_code=response.status_code, endpoint=path)
        return data

    def reset(self) -> None:
        """Back to the seed state."""
        self._call("POST", "/reset")

    def create_user(
        self, name: str, balances: dict[str, float] | None = None, servers: list[int] | None = None
    ) -> tuple[str, int]:
        """Add a user; returns (api_key, user_id)."""
        body: dict[str, Any] = {"name": name, "balances": balances or {}, "servers": servers or []}
        data = self._call("POST", "/users", body)
        return str(data["api_key"]), int(data["user_id"])

    def advance(self, seconds: float) -> float:
        """Move the sandbox clock; returns the new simulated time."""
        return float(self._call("POST", "/advance", {"seconds": seconds})["now"])

    def inject_fault(
        self, endpoint: str, fault: str, count: int = 1, *, seconds: float | None = None
    ) -> None:
        """Make the next ``count`` calls of ``endpoint`` fail with ``fault`` (``seconds``:
        the Retry-After of ``rate_limit``, the delay of ``late_commit``)."""
        body: dict[str, Any] = {"endpoint": endpoint, "fault": fault, "count": count}
        if seconds is not None:
            body["seconds"] = seconds
        self._call("POST", "/faults", body)

    def faults(self) -> list[tuple[str, str, int]]:
        """Queued faults as (endpoint, fault, remaining)."""
        listed = self._call("GET", "/faults")["faults"]
        return [(f["endpoint"], f["fault"], int(f["remaining"])) for f in listed]

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self._call("DELETE", "/faults")

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
        """Change a server as its host or the market would; ``delivers`` (merged; None:
        honest again) is the hardware its orders' machines report."""
        fields = {
            "price": price,
            "rented": rented,
            "online": online,
            "visible": visible,
            "end_outbid": end_outbid,
        }
        body: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
        if not isinstance(delivers, UnsetType):
            body["delivers"] = delivers
        self._call("POST", f"/servers/{int(server_id)}", body)

    def order_logs(self, order_id: int, limit: int = 64 * 1024) -> str:
        """The newest ``limit`` bytes of the order's command output."""
        answer = self._call("GET", f"/orders/{int(order_id)}/logs?limit={int(limit)}")
        return str(answer["log"])

    def set_access_fault(self, order_id: int, fault: str | None, seconds: float = 0.0) -> None:
        """Make the order's SSH refuse, delay (``seconds``) or drop connections; None clears."""
        body = {"fault": fault, "seconds": float(seconds)}
        self._call("POST", f"/orders/{int(order_id)}/access", body)

    def machines_info(self) -> dict[str, Any]:
        """Where the server's machines run, their isolation, the orders running one."""
        data = self._call("GET", "/machines")
        data.pop("code", None)
        return data

    def market_tick(self, count: int = 1) -> list[str]:
        """Run market events now; returns what happened."""
        return [str(e) for e in self._call("POST", "/market/tick", {"count": count})["events"]]

    def info(self) -> dict[str, Any]:
        """Time, demo key and settings of the server."""
        data = self._call("GET", "/info")
        data.pop("code", None)
        return data

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _token(given: str | None) -> str | None:
    source = "control token" if given is not None else TOKEN_ENV
    token = (given if given is not None else os.environ.get(TOKEN_ENV, "")).strip()
    if not token:
        return None
    if not all("\x21" <= ch <= "\x7e" for ch in token):
        # Checked here so that httpx never builds an error message holding the token.
        raise ConfigError(f"{source}: only visible ASCII characters, no spaces")
    return token


def control_client(base_url: str, **kwargs: Any) -> ControlClient:
    """A ``ControlClient`` for the sandbox server at ``base_url`` (use it as a context manager)."""
    return ControlClient(base_url, **kwargs)
