"""Seeded template databases that new sandboxes are copied from instead of seeded.

Seeding the bundled snapshot (3,500 servers, their rentals, the demo user) takes tens of
milliseconds; copying a seeded in-memory database with SQLite's backup API takes about
one. ``Templates`` keeps one seeded database per seed configuration — the seed source
(a file's size and modification time included), the simulated time it was seeded at, the
market's random seed and activity — and ``Sandbox(template=...)`` copies the matching
one into its new database. A copy is the database a fresh seed at that time would have
built, except for the demo user's key: each copy gets its own (or the ``demo_key`` asked
for).

Seeding depends on the time (rentals end within their ``mrl`` from then), so a template
only serves sandboxes created at the same simulated time: on a ``ManualClock`` that is
every sandbox of a test suite; on real time no two match, and a template saves nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from clore.sandbox.backend import Backend
from clore.sandbox.backend.accounts import new_api_key
from clore.sandbox.backend.seed import SNAPSHOT, load_records
from clore.sandbox.store import SqliteStore

__all__ = ["Templates"]

#: (seed source, its stamp, seeding time, rng seed, market activity)
TemplateKey = tuple[str | None, tuple[int, int] | None, float, int, float]


def _stamp(source: str | None) -> tuple[int, int] | None:
    """A seed file's (size, mtime in ns): a file changed since is a different seed."""
    if source is None or source == SNAPSHOT:
        return None
    try:
        info = Path(source).stat()
    except OSError:
        return None  # not a file (an empty-market name): the source names it alone
    return info.st_size, info.st_mtime_ns


class Templates:
    """A few seeded in-memory databases, the least recently used dropped past ``limit``.

    Thread-safe; each template is built on first use. ``built`` counts the seedings done.
    """

    def __init__(self, limit: int = 4) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.built = 0
        self._stores: OrderedDict[TemplateKey, SqliteStore] = OrderedDict()
        self._lock = threading.Lock()

    def restore(
        self,
        store: SqliteStore,
        source: str | None,
        now: float,
        *,
        rng_seed: int = 0,
        market_activity: float = 0.0,
        demo_key: str | None = None,
    ) -> str | None:
        """Copy the template for this seed into ``store`` if it is new (an existing
        database is left alone); returns the demo key to open it with: ``demo_key``, or
        for a copy without one a fresh key, so no two sandboxes share their demo key."""
        if not store.is_new():
            return demo_key
        key: TemplateKey = (source, _stamp(source), now, rng_seed, float(market_activity))
        with self._lock:
            template = self._stores.get(key)
            if template is None:
                template = self._build(key)
                self._stores[key] = template
                while len(self._stores) > self.limit:
                    _, dropped = self._stores.popitem(last=False)
                    dropped.close()
            else:
                self._stores.move_to_end(key)
            store.copy_from(template)
        return demo_key or new_api_key()

    def _build(self, key: TemplateKey) -> SqliteStore:
        source, _, now, rng_seed, market_activity = key
        template = SqliteStore(":memory:")
        backend = Backend(template, lambda: now, market_activity=market_activity, rng_seed=rng_seed)
        backend.initialize(lambda: load_records(source), source, None)
        self.built += 1
        return template

    def close(self) -> None:
        """Close every template database."""
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()

    def __len__(self) -> int:
        return len(self._stores)
