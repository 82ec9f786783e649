"""clore.sandbox: the Clore.ai REST API v1, implemented, for development and tests.

``Sandbox`` runs in-process (tests, the CLI's ``--sandbox`` mode); ``serve`` runs it as
an HTTP server (``clore sandbox serve``, ``python -m clore.sandbox serve``). See
docs/sandbox.md for the behaviour it chose where the public sources are silent.

This package's names are all a face may use (``scripts/check_imports.py``): the server
and its defaults (``serve``, ``default_db_path``, ``ControlAccessError``), the seed
(``SNAPSHOT``, ``require_source``, ``load_records``, ``snapshot_bytes``), the control
plane (``control_client``, ``FAULTS`` and ``FAULT_HELP``, the ``ENDPOINTS`` a fault can
target).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clore.sandbox.access import ControlAccessError
    from clore.sandbox.backend.errors import ApiError
    from clore.sandbox.backend.seed import SNAPSHOT, load_records, require_source, snapshot_bytes
    from clore.sandbox.dispatch import ENDPOINTS
    from clore.sandbox.faults import FAULT_HELP, FAULTS
    from clore.sandbox.remote import ControlClient, control_client
    from clore.sandbox.server import default_db_path, serve
    from clore.sandbox.service import BASE_URL, Sandbox

__all__ = [
    "BASE_URL",
    "ENDPOINTS",
    "FAULTS",
    "FAULT_HELP",
    "SNAPSHOT",
    "ApiError",
    "ControlAccessError",
    "ControlClient",
    "Sandbox",
    "control_client",
    "default_db_path",
    "load_records",
    "require_source",
    "serve",
    "snapshot_bytes",
]

# Where each lazily imported name lives (importing this package loads none of them).
_EXPORTS: dict[str, str] = {
    "BASE_URL": "clore.sandbox.service",
    "ENDPOINTS": "clore.sandbox.dispatch",
    "FAULTS": "clore.sandbox.faults",
    "FAULT_HELP": "clore.sandbox.faults",
    "SNAPSHOT": "clore.sandbox.backend.seed",
    "ApiError": "clore.sandbox.backend.errors",
    "ControlAccessError": "clore.sandbox.access",
    "ControlClient": "clore.sandbox.remote",
    "Sandbox": "clore.sandbox.service",
    "control_client": "clore.sandbox.remote",
    "default_db_path": "clore.sandbox.server",
    "load_records": "clore.sandbox.backend.seed",
    "require_source": "clore.sandbox.backend.seed",
    "serve": "clore.sandbox.server",
    "snapshot_bytes": "clore.sandbox.backend.seed",
}


def __getattr__(name: str) -> Any:
    # Lazy, so `clore sandbox --help` does not load SQLite, msgspec and Starlette.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clore.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
