"""The marketplace cache file's schema (a msgspec Struct; imported only when used)."""

from __future__ import annotations

from msgspec import Struct

from clore import Server

__all__ = ["CacheFile"]


class CacheFile(Struct, omit_defaults=True):
    """One endpoint's cached listing (``fetched_at`` unix s) and USD rates (``rates_at``)."""

    endpoint: str = ""
    fetched_at: float | None = None
    servers: list[Server] | None = None
    rates: dict[str, float] | None = None
    rates_at: float | None = None
