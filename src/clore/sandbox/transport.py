"""httpx transports that call a sandbox in-process: no socket, no thread, no event loop.

Injected faults become what a client would see over a network: ``timeout`` raises
``httpx.ReadTimeout`` (nothing was changed), ``drop_after_commit`` raises
``httpx.RemoteProtocolError`` after the change was committed.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx

from clore.sandbox.dispatch import SandboxRequest, SandboxResponse
from clore.sandbox.faults import DROP, TIMEOUT

__all__ = ["AsyncSandboxTransport", "SandboxTransport"]

Handle = Callable[[SandboxRequest], SandboxResponse]


def _call(handle: Handle, request: httpx.Request, body: bytes) -> httpx.Response:
    query = dict(parse_qsl(request.url.query.decode("latin-1"), keep_blank_values=True))
    headers = {k.lower(): v for k, v in request.headers.items()}
    response = handle(SandboxRequest(request.method, request.url.path, query, headers, body))
    if response.fault == TIMEOUT:
        raise httpx.ReadTimeout("injected timeout: the sandbox never answered", request=request)
    if response.fault == DROP:
        raise httpx.RemoteProtocolError(
            "injected drop: the sandbox committed and closed the connection", request=request
        )
    return httpx.Response(
        response.status, headers=response.headers(), content=response.body, request=request
    )


class SandboxTransport(httpx.BaseTransport):
    """Synchronous in-process transport."""

    def __init__(self, handle: Handle) -> None:
        self._handle = handle

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return _call(self._handle, request, request.read())


class AsyncSandboxTransport(httpx.AsyncBaseTransport):
    """Asynchronous in-process transport (runs the call inline on the event loop)."""

    def __init__(self, handle: Handle) -> None:
        self._handle = handle

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return _call(self._handle, request, await request.aread())
