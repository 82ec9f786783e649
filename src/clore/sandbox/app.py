"""The Starlette app: one catch-all route onto the framework-free dispatcher.

Only transport concerns live here: reading the body, telling whether the peer is on
the loopback interface (for the control plane's access rule), and realising the injected
faults that a socket can express — ``timeout`` holds the request open without answering
(until the client gives up or ``fault_hold`` seconds pass), ``drop_after_commit`` sends
the status line and headers with a ``Content-Length`` and closes before the body.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from clore.sandbox.access import is_loopback_address
from clore.sandbox.dispatch import SandboxRequest, SandboxResponse
from clore.sandbox.faults import DROP, TIMEOUT

__all__ = ["create_app"]

_MAX_BODY = 4 * 1024 * 1024


class _Endpoint:
    """A raw ASGI endpoint (Starlette routes non-function endpoints as ASGI apps)."""

    def __init__(
        self, handle: Callable[[SandboxRequest], SandboxResponse], fault_hold: float
    ) -> None:
        self.handle = handle
        self.fault_hold = fault_hold

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # no websockets here: refuse the handshake
                await send({"type": "websocket.close", "code": 1008})
            return
        body, complete = await _read_body(receive)
        if not complete:
            response = SandboxResponse(200, b'{"code":2}', detail="request body too large")
        else:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            raw_query = scope.get("query_string", b"")
            query = (
                dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
                if raw_query
                else {}
            )
            request = SandboxRequest(
                scope["method"], scope["path"], query, headers, body, _loopback(scope)
            )
            response = self.handle(request)
        if response.fault == TIMEOUT:
            await _hold(receive, self.fault_hold)
            await _drop(send, response)
            return
        if response.fault == DROP:
            await _drop(send, response)
            return
        await _answer(send, response)


def _loopback(scope: Scope) -> bool:
    # An unknown peer (no "client" in the scope) is not trusted as loopback.
    client = scope.get("client")
    return client is not None and is_loopback_address(str(client[0]))


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), size <= _MAX_BODY


def _headers(response: SandboxResponse) -> list[tuple[bytes, bytes]]:
    headers = [
        (name.encode(), value.encode("ascii", "replace")) for name, value in response.headers()
    ]
    headers.append((b"content-length", str(len(response.body)).encode()))
    return headers


async def _answer(send: Send, response: SandboxResponse) -> None:
    await send(
        {"type": "http.response.start", "status": response.status, "headers": _headers(response)}
    )
    await send({"type": "http.response.body", "body": response.body})


async def _drop(send: Send, response: SandboxResponse) -> None:
    # Promise a body and return without sending it: the server closes the connection,
    # and the client sees a protocol error instead of an answer.
    body = response.body or b'{"code":0}'
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body) + 1).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _hold(receive: Receive, seconds: float) -> None:
    async def disconnected() -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                return

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(disconnected(), timeout=seconds)


def create_app(
    handle: Callable[[SandboxRequest], SandboxResponse], *, fault_hold: float = 30.0
) -> Starlette:
    """The ASGI app answering every path through ``handle``."""
    endpoint: Any = _Endpoint(handle, fault_hold)
    app = Starlette()
    # The router's default, not a "/{path:path}" route: that pattern stops at a newline,
    # and a path holding one would get Starlette's plain-text 404 instead of JSON.
    app.router.default = endpoint
    return app
