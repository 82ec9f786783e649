"""clore.sandbox: the Clore.ai REST API v1, implemented, for development and tests.

``Sandbox`` runs in-process (tests, the CLI's ``--sandbox`` mode); ``serve`` runs it as
an HTTP server (``clore sandbox serve``, ``python -m clore.sandbox serve``). See
docs/sandbox.md for the behaviour it chose where the public sources are silent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clore.sandbox.backend.errors import ApiError
    from clore.sandbox.backend.seed import snapshot_bytes
    from clore.sandbox.remote import ControlClient, control_client
    from clore.sandbox.server import serve
    from clore.sandbox.service import BASE_URL, Sandbox

__all__ = [
    "BASE_URL",
    "ApiError",
    "ControlClient",
    "Sandbox",
    "control_client",
    "serve",
    "snapshot_bytes",
]


def __getattr__(name: str) -> Any:
    # Lazy, so `clore sandbox --help` does not load SQLite, msgspec and Starlette.
    if name in ("Sandbox", "BASE_URL"):
        from clore.sandbox import service

        return getattr(service, name)
    if name == "serve":
        from clore.sandbox.server import serve

        return serve
    if name in ("ControlClient", "control_client"):
        from clore.sandbox import remote

        return getattr(remote, name)
    if name == "snapshot_bytes":
        from clore.sandbox.backend.seed import snapshot_bytes

        return snapshot_bytes
    if name == "ApiError":
        from clore.sandbox.backend.errors import ApiError

        return ApiError
    raise AttributeError(f"module 'clore.sandbox' has no attribute {name!r}")
