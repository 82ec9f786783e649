"""A request that reaches the sandbox after the client gave up on it: a late commit.

``LateCommit`` wraps a sandbox handler (``Sandbox.handle``, or a recorder around it) for
``clore.sandbox.transport.SandboxTransport``. The next request to ``endpoint`` is held back
and answered as a timeout (the transport raises ``httpx.ReadTimeout``), so the client sees
an uncertain outcome while nothing has changed yet. The held request reaches the sandbox,
and commits, when ``deliver()`` is called or, with ``before_resend``, just before the next
request to the same endpoint (the client's resend); ``then`` runs right after that delivery,
to arrange how the resend is answered (a queued refusal, say); ``on_hold`` runs as the
request is held back.

The sandbox's own faults cannot do this: ``timeout`` never commits and
``drop_after_commit`` commits before the client's my_orders checks, so they see the order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from clore._clock import ManualClock
from clore.sandbox.dispatch import SandboxRequest, SandboxResponse
from clore.sandbox.faults import TIMEOUT

__all__ = ["ArrivesAfterTheCall", "LateCommit"]

Handle = Callable[[SandboxRequest], SandboxResponse]


class LateCommit:
    """Holds the next ``endpoint`` request back and delivers it later (see the module)."""

    def __init__(
        self,
        handle: Handle,
        endpoint: str = "create_order",
        *,
        before_resend: bool = True,
        then: Callable[[], None] | None = None,
        on_hold: Callable[[], None] | None = None,
    ) -> None:
        self._handle = handle
        self.endpoint = endpoint
        self.before_resend = before_resend
        self.then = then
        self.on_hold = on_hold
        self._armed = True
        self._held: list[SandboxRequest] = []
        self.delivered: list[SandboxResponse] = []  # the held requests' answers, never seen
        self.sent = 0  # requests to ``endpoint`` the client made (held ones included)

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        if request.path.rstrip("/").rsplit("/", 1)[-1] != self.endpoint:
            return self._handle(request)
        self.sent += 1
        if self._held and self.before_resend:
            self.deliver()
        if self._armed:
            self._armed = False
            self._held.append(request)
            if self.on_hold is not None:
                self.on_hold()
            return SandboxResponse(504, b"", "text/plain", TIMEOUT, "held back: a late commit")
        return self._handle(request)

    @property
    def holding(self) -> bool:
        """True while a request is held back (not yet delivered)."""
        return bool(self._held)

    @property
    def committed(self) -> bool:
        """True once a delivered request was accepted (HTTP 200, code 0): it acted."""
        return any(r.status == 200 and json.loads(r.body).get("code") == 0 for r in self.delivered)

    def deliver(self) -> None:
        """Let the held request reach the sandbox now (it commits), then run ``then``."""
        while self._held:
            self.delivered.append(self._handle(self._held.pop(0)))
        if self.then is not None:
            then, self.then = self.then, None
            then()


class ArrivesAfterTheCall:
    """A client whose held-back create_order reaches the sandbox ``delay`` seconds after
    the SDK call that sent it ended (returned or raised): later than every check it made.

    The delay also keeps the sandbox's own rate limit from refusing the late request.
    """

    def __init__(
        self,
        inner: Any,
        late: LateCommit,
        clock: ManualClock,
        delay: float = 10.0,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.inner, self.late, self.clock, self.delay = inner, late, clock, delay
        self.prepare = prepare  # runs just before the delivery

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_order(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.inner.create_order(*args, **kwargs)
        finally:
            if self.late.holding:
                self.clock.advance(self.delay)
                if self.prepare is not None:
                    self.prepare()
                self.late.deliver()
