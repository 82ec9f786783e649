"""The sandbox's control plane as the ``clore sandbox`` commands reach it: the embedded
Sandbox (``--sandbox``) or a sandbox server over HTTP (``--base-url``), never the real API.

Both answer the same methods (``reset``, ``advance``, ``inject_fault``, ``faults``,
``clear_faults``, ``set_server``, ``order_logs``, ``set_access_fault``: ``Sandbox`` and
``clore.sandbox.control_client``); a refusal is one line (exit 2 for bad input), an
unreachable server says how to start one.
"""

from __future__ import annotations

import inspect
from typing import Any

from clore.cli._context import EXIT_API, EXIT_USAGE, AppContext, CliError

__all__ = ["Control"]


class Control:
    """The control plane: the embedded Sandbox, or a sandbox server over HTTP."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.embedded = app.sandbox or app.sandbox_instance is not None
        self.base_url = ""
        if not self.embedded:
            from clore.config import DEFAULT_BASE_URL, resolve

            self.base_url = (app.base_url or resolve(app.profile).base_url).rstrip("/")
            if self.base_url == DEFAULT_BASE_URL.rstrip("/"):
                raise CliError(
                    "sandbox control needs --sandbox (embedded) or --base-url of a sandbox "
                    "server; refusing to send it to the real API",
                    EXIT_USAGE,
                )

    def takes(self, action: str, argument: str) -> bool:
        """Whether this control plane's ``action`` takes ``argument`` (a server of another
        version may not)."""
        if self.embedded:
            target: Any = self.app.embedded_sandbox()
        else:
            from clore.sandbox import ControlClient as target
        return argument in inspect.signature(getattr(target, action)).parameters

    def call(self, action: str, **arguments: Any) -> Any:
        """Run ``action`` with ``arguments`` on the control plane; its answer."""
        if self.embedded:
            from clore.sandbox import ApiError

            target = self.app.embedded_sandbox()
            try:
                return getattr(target, action)(**arguments)
            except ApiError as exc:  # the embedded sandbox refuses as its HTTP API would
                raise CliError(f"sandbox {action}: {exc}", 2 if exc.code == 2 else 1) from None
        import httpx

        from clore.sandbox import control_client

        try:
            with control_client(self.base_url) as remote:
                return getattr(remote, action)(**arguments)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the sandbox control plane at {self.base_url}: "
                f"{type(exc).__name__}: {exc} (is `clore sandbox serve` running?)",
                EXIT_API,
            ) from None
