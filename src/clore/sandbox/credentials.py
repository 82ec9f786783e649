"""``Credentials``: the SSH passwords and keys of orders, kept out of the database for
their machines."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

from clore._files import write_atomic

__all__ = ["Credentials"]


class Credentials:
    """SSH passwords and keys of orders, kept out of the database.

    In memory; with a ``directory`` (file databases) also one file per order there
    (``ORDER.json``, mode 0600, the directory 0700), so the process that runs the machines
    — a background host, a restarted ``serve`` — finds them. Dropped when the order ends.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[int, tuple[str | None, str | None]] = {}
        self._lock = threading.Lock()

    def put(self, order_id: int, password: str | None, key: str | None) -> None:
        with self._lock:
            self._memory[order_id] = (password, key)
        if self.directory is not None and (password or key):
            body = json.dumps({"ssh_password": password, "ssh_key": key})
            write_atomic(self.directory / f"{order_id}.json", body, mode=0o600)

    def get(self, order_id: int) -> tuple[str | None, str | None]:
        with self._lock:
            found = self._memory.get(order_id)
        if found is not None or self.directory is None:
            return found or (None, None)
        try:
            data = json.loads((self.directory / f"{order_id}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None, None
        return data.get("ssh_password"), data.get("ssh_key")

    def drop(self, order_id: int) -> None:
        with self._lock:
            self._memory.pop(order_id, None)
        if self.directory is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{order_id}.json").unlink()

    def stored(self) -> list[int]:
        """Order ids with credentials (in memory or on disk)."""
        ids = set(self._memory)
        if self.directory is not None and self.directory.is_dir():
            ids.update(int(p.stem) for p in self.directory.glob("*.json") if p.stem.isdigit())
        return sorted(ids)
