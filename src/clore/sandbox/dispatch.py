"""The request pipeline, independent of any web framework.

``Dispatcher.handle(SandboxRequest) -> SandboxResponse`` is synchronous and complete:
routing, the control plane's access rule (``access.ControlAccess``), injected faults,
authentication, rate limits, handlers and error mapping. The Starlette app and the
in-process httpx transports are thin shells around it, so every way of reaching the
sandbox behaves the same. The endpoints, codes and header names are ``clore._facts``'s
(``ENDPOINTS`` is re-exported here). Nothing escapes as a 500: an unexpected failure is logged and
answered ``{"code": 1}`` (database error, retry later).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

import msgspec

from clore._facts import (
    AUTH_HEADER,
    DB_ERROR,
    DETAIL_HEADER,
    ENDPOINTS,
    HTTP_STATUS,
    INVALID_ENDPOINT,
    INVALID_TOKEN,
    NOW_HEADER,
    RATE_LIMITED,
    RETRY_AFTER_HEADER,
    SCALE_HEADER,
    TOKEN_HEADER,
    Endpoint,
)
from clore.sandbox.access import LOOPBACK_ONLY, TOKEN_REQUIRED, ControlAccess, header_text
from clore.sandbox.backend import ApiError, Backend
from clore.sandbox.faults import AFTER_COMMIT, DROP, fault_response_parts, parse_fault
from clore.sandbox.handlers import Call, Handlers
from clore.sandbox.held import Held, HeldRequests
from clore.sandbox.ratelimit import RateLimiter

__all__ = [
    "ENDPOINTS",
    "ControlPlane",
    "Dispatcher",
    "Endpoint",
    "SandboxRequest",
    "SandboxResponse",
    "error_response",
    "json_response",
]

log = logging.getLogger("clore.sandbox")

JSON: Final = "application/json"


@dataclass(frozen=True)
class SandboxRequest:
    """An HTTP request reduced to what the sandbox reads. Header names are lower case;
    ``loopback`` says the peer is on the loopback interface (or in-process)."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    loopback: bool = True


@dataclass(frozen=True)
class SandboxResponse:
    """An answer: status, body, content type, and a transport ``fault`` marker.

    ``fault`` is None for a normal answer, ``"timeout"`` when the transport must never
    answer, ``"drop"`` when it must drop the connection instead of sending this answer.
    ``now`` and ``time_scale`` (set by ``Sandbox.handle``) become the ``x-sandbox-now``
    and ``x-sandbox-time-scale`` headers. ``detail`` may hold request text: it is sent
    escaped to visible ASCII and capped (``access.header_text``), so no header is ever
    refused by the HTTP server. ``retry_after`` (seconds) becomes a ``Retry-After`` header.
    """

    status: int
    body: bytes
    content_type: str = JSON
    fault: str | None = None
    detail: str | None = None
    now: float | None = None
    time_scale: float | None = None
    retry_after: float | None = None

    def headers(self) -> list[tuple[str, str]]:
        """The headers every transport sends with this answer (names in lower case)."""
        headers = [("content-type", self.content_type)]
        if self.detail:
            headers.append((DETAIL_HEADER, header_text(self.detail)))
        if self.now is not None:
            headers.append((NOW_HEADER, f"{self.now:.6f}"))
        if self.time_scale is not None:
            headers.append((SCALE_HEADER, repr(float(self.time_scale))))
        if self.retry_after is not None:
            headers.append((RETRY_AFTER_HEADER, str(math.ceil(self.retry_after))))
        return headers


def json_response(body: bytes, status: int = 200, detail: str | None = None) -> SandboxResponse:
    """A JSON answer."""
    return SandboxResponse(status=status, body=body, detail=detail)


def _code(code: int) -> SandboxResponse:
    """The bare answer ``{"code": code}`` with its HTTP status."""
    return json_response(b'{"code":%d}' % code, HTTP_STATUS.get(code, 200))


_UNAUTHORIZED = _code(INVALID_TOKEN)
_RATE_LIMITED = _code(RATE_LIMITED)
_NO_ENDPOINT = _code(INVALID_ENDPOINT)
_LOOPBACK_ONLY = json_response(
    msgspec.json.encode({"code": INVALID_TOKEN, "error": LOOPBACK_ONLY}),
    403,
    "the control plane serves loopback peers only (serve --control-token opens it)",
)
_TOKEN_REQUIRED = json_response(
    msgspec.json.encode({"code": INVALID_TOKEN, "error": TOKEN_REQUIRED}),
    HTTP_STATUS[INVALID_TOKEN],
    f"the control plane needs the {TOKEN_HEADER} header",
)


class ControlPlane(Protocol):
    """The ``/_sandbox/`` handler."""

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer a control-plane request."""
        ...


def error_response(exc: ApiError) -> SandboxResponse:
    """The answer for a domain error: HTTP 401/429 for codes 3/5, else 200."""
    status = HTTP_STATUS.get(exc.code, 200)
    return json_response(msgspec.json.encode(exc.body()), status, exc.detail)


class Dispatcher:
    """Routes a request through faults, auth and rate limits to a handler."""

    def __init__(
        self,
        backend: Backend,
        handlers: Handlers,
        limiter: RateLimiter,
        now: Callable[[], float],
        control: ControlPlane | None = None,
        access: ControlAccess | None = None,
    ) -> None:
        self.backend = backend
        self.handlers = handlers
        self.limiter = limiter
        self.now = now
        self.control = control
        self.access = access or ControlAccess()
        self.held = HeldRequests(backend.store)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request; never raises."""
        try:
            if request.path == "/_sandbox" or request.path.startswith("/_sandbox/"):
                refused = self.access.refusal(request.loopback, request.headers.get(TOKEN_HEADER))
                if refused is not None:
                    return _LOOPBACK_ONLY if refused == LOOPBACK_ONLY else _TOKEN_REQUIRED
                if self.control is None:
                    return _NO_ENDPOINT
                return self.control.handle(request)
            return self._v1(request)
        except ApiError as exc:
            if exc.code == DB_ERROR:
                log.warning("database error on %s %r: %s", request.method, request.path, exc)
            return error_response(exc)
        except Exception:
            log.exception("internal error on %s %r", request.method, request.path)
            return json_response(b'{"code":%d}' % DB_ERROR, detail="internal error")

    def _v1(self, request: SandboxRequest) -> SandboxResponse:
        path = request.path
        if not path.startswith("/v1/"):
            return _NO_ENDPOINT
        name = path[4:].rstrip("/")
        endpoint = ENDPOINTS.get(name)
        if endpoint is None or request.method != endpoint.method:
            return _NO_ENDPOINT
        key = request.headers.get(AUTH_HEADER, "")
        fault, user_id = self.backend.admit(name, key)
        self.apply_held(name)
        if fault is None:
            return self._call(name, endpoint, request, key, user_id)
        return self._faulted(fault, name, endpoint, request, key, user_id)

    # ---- injected faults (see faults.py) ---------------------------------------------------
    def _faulted(
        self,
        spec: str,
        name: str,
        endpoint: Endpoint,
        request: SandboxRequest,
        key: str,
        user_id: int | None,
    ) -> SandboxResponse:
        fault, seconds = parse_fault(spec)
        detail = f"injected {fault}"
        if fault == "late_commit":
            due = None if seconds is None else self.now() + seconds
            self.held.hold(
                Held(
                    endpoint=name,
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers=dict(request.headers),
                    body=request.body,
                    arrived=self.now(),
                    due=due,
                )
            )
        elif fault in AFTER_COMMIT:
            response = self._call(name, endpoint, request, key, user_id)
            if fault == "drop_after_commit":
                return replace(response, fault=DROP, detail=detail)
        status, body, content_type, marker = fault_response_parts(fault)
        retry_after = seconds if fault == "rate_limit" else None
        return SandboxResponse(status, body, content_type, marker, detail, retry_after=retry_after)

    def apply_held(self, endpoint: str | None = None) -> int:
        """Apply the requests ``late_commit`` held back that are due now (by time, or, for
        ``endpoint``, before its next request); returns how many."""
        due = self.held.take(endpoint, self.now())
        for held in due:
            late = SandboxRequest(held.method, held.path, held.query, held.headers, held.body)
            key = held.headers.get(AUTH_HEADER, "")
            user_id = self.backend.authenticate(key)
            target = ENDPOINTS[held.endpoint]
            answer = self._call(held.endpoint, target, late, key, user_id, paced=False)
            log.info("late commit of %s: HTTP %d %r", held.endpoint, answer.status, answer.body)
        return len(due)

    def _call(
        self,
        name: str,
        endpoint: Endpoint,
        request: SandboxRequest,
        key: str,
        user_id: int | None,
        *,
        paced: bool = True,
    ) -> SandboxResponse:
        if user_id is None and endpoint.auth:
            return _UNAUTHORIZED
        if paced and user_id is not None and not self.limiter.allow(key, name, self.now()):
            return _RATE_LIMITED
        try:
            body = getattr(self.handlers, name)(Call(user_id, request.query, request.body))
        except ApiError as exc:
            if exc.code == DB_ERROR:
                log.warning("%s: %s", name, exc)
            return error_response(exc)
        return json_response(body)
