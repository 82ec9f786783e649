"""The marketplace listing and USD rates, kept briefly in the user cache.

As the vendor's guide advises, the last ``marketplace`` response is kept for a short time
(``DEFAULT_TTL``, 30 s; callers pass their own ``max_age``), so refining a query is
instant and spends no request. The API has no rates endpoint: ``spot_marketplace`` of any
server carries ``currency_rates_in_usd``, so one such call (on the first available
server) supplies them; rates are kept for ``RATES_TTL`` (10 minutes). One cache file per
API endpoint (``cache_path``: ``cache_dir()/market/<sha256(endpoint)[:16]>.json``),
replaced atomically; a file that cannot be read is a cache miss.

Unlike the rest of ``clore.market`` this module does I/O (the file, and the client it is
given); ``clore.market`` does not import it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import msgspec

from clore._errors import CloreError
from clore._files import write_atomic
from clore._paths import cache_dir
from clore._wire import Server, SpotMarket

__all__ = [
    "DEFAULT_TTL",
    "RATES_TTL",
    "TTL_ENV",
    "CacheFile",
    "MarketClient",
    "MarketData",
    "cache_path",
    "fetch_rates",
    "invalidate",
    "load",
]

#: Seconds a cached listing is reused by default.
DEFAULT_TTL: Final = 30.0
#: Seconds cached USD rates are reused.
RATES_TTL: Final = 600.0
#: The environment variable the CLI reads its default ``max_age`` from.
TTL_ENV: Final = "CLORE_MARKET_TTL"


class MarketClient(Protocol):
    """What the cache asks of a client (``clore.Clore`` has it all)."""

    @property
    def has_api_key(self) -> bool: ...

    def marketplace(self) -> list[Server]: ...

    def spot_marketplace(self, server_id: int) -> SpotMarket: ...


class CacheFile(msgspec.Struct, omit_defaults=True):
    """One endpoint's cached listing (``fetched_at`` unix s) and USD rates (``rates_at``)."""

    endpoint: str = ""
    fetched_at: float | None = None
    servers: list[Server] | None = None
    rates: dict[str, float] | None = None
    rates_at: float | None = None


@dataclass
class MarketData:
    """A marketplace listing, when it was fetched, whether it came from the cache, and the
    USD rates (None, with ``rates_note`` saying why)."""

    servers: list[Server]
    fetched_at: float
    cached: bool
    rates: dict[str, float] | None
    rates_note: str | None = None

    def server(self, server_id: int) -> Server | None:
        """The listed server with ``server_id``; None when the marketplace lacks it."""
        return next((s for s in self.servers if s.id == server_id), None)


def cache_path(endpoint: str) -> Path:
    """The cache file of ``endpoint`` (a base URL or a label such as ``sandbox:embedded``)."""
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:16]
    return cache_dir() / "market" / f"{digest}.json"


def _read(path: Path) -> CacheFile | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=CacheFile, strict=False)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def _write(path: Path, document: CacheFile) -> None:
    # A listing is public data; 0600 all the same, like every file the package writes.
    write_atomic(path, msgspec.json.encode(document))


def invalidate(endpoint: str) -> None:
    """Forget the cached listing of ``endpoint`` (renting or cancelling changed the market);
    its rates stay valid."""
    path = cache_path(endpoint)
    cached = _read(path)
    if cached is None:
        return
    _write(path, CacheFile(endpoint=cached.endpoint, rates=cached.rates, rates_at=cached.rates_at))


def fetch_rates(client: MarketClient, servers: list[Server]) -> tuple[dict[str, float] | None, str]:
    """USD rates from the ``spot_marketplace`` of the first available server, and why
    there are none (``""`` when there are; the call needs an API key)."""
    if not servers:
        return None, "the marketplace is empty"
    if not client.has_api_key:
        return None, "spot_marketplace needs an API key"
    target = next((s for s in servers if not s.rented), servers[0])
    try:
        spot = client.spot_marketplace(target.id)
    except CloreError as exc:
        return None, f"spot_marketplace failed: {exc}"
    rates = {name: float(value) for name, value in spot.currency_rates_in_usd.items() if value}
    return (rates or None), ("" if rates else "spot_marketplace returned no rates")


def load(
    client: MarketClient,
    *,
    endpoint: str,
    now: float,
    refresh: bool = False,
    max_age: float = DEFAULT_TTL,
    rates: bool = True,
) -> MarketData:
    """The marketplace of ``endpoint`` (from the cache when at most ``max_age`` seconds old
    at ``now``, unless ``refresh``) and, with ``rates``, USD rates (cached or fetched)."""
    path = cache_path(endpoint)
    cached = None if refresh else _read(path)
    servers: list[Server] | None = None
    fetched_at = now
    if (
        cached is not None
        and cached.servers is not None
        and cached.fetched_at is not None
        and 0 <= now - cached.fetched_at <= max_age
    ):
        servers, fetched_at = list(cached.servers), cached.fetched_at
    from_cache = servers is not None
    if servers is None:
        servers = list(client.marketplace())
    rate_table: dict[str, float] | None = None
    rates_at: float | None = None
    note = ""
    if (
        cached is not None
        and cached.rates
        and cached.rates_at is not None
        and 0 <= now - cached.rates_at <= RATES_TTL
    ):
        rate_table, rates_at = dict(cached.rates), cached.rates_at
    if rates and rate_table is None:
        rate_table, note = fetch_rates(client, servers)
        rates_at = now if rate_table else None
    if not from_cache or rates_at == now:
        document = CacheFile(
            endpoint=endpoint,
            fetched_at=fetched_at,
            servers=servers,
            rates=rate_table,
            rates_at=rates_at,
        )
        _write(path, document)
    return MarketData(servers, fetched_at, from_cache, rate_table, note or None)
