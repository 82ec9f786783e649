"""The marketplace listing and USD rates, kept briefly in the user cache.

As the vendor's guide advises, the last ``marketplace`` response is kept for a short time
(default 30 s; ``CLORE_MARKET_TTL`` or ``--max-age`` change it, ``--refresh`` bypasses it),
so refining a query is instant and spends no request. The API has no rates endpoint:
``spot_marketplace`` of any server carries ``currency_rates_in_usd``, so one such call
(on the first listed server) supplies them; rates are kept for 10 minutes. One cache file
per API endpoint under ``cache_dir()/market/``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from clore.cli._context import AppContext, CliError

if TYPE_CHECKING:
    from clore import Server

__all__ = ["DEFAULT_TTL", "RATES_TTL", "MarketData", "invalidate", "load", "ttl"]

DEFAULT_TTL: Final = 30.0
RATES_TTL: Final = 600.0
TTL_ENV: Final = "CLORE_MARKET_TTL"


@dataclass
class MarketData:
    """A marketplace listing, its age and the USD rates (None, with ``rates_note`` why)."""

    servers: list[Server]
    fetched_at: float
    cached: bool
    rates: dict[str, float] | None
    rates_note: str | None = None


def ttl(max_age: float | None = None) -> float:
    """The cache lifetime: ``--max-age``, else ``CLORE_MARKET_TTL``, else 30 s."""
    if max_age is not None:
        return max_age
    raw = os.environ.get(TTL_ENV)
    if raw:
        from clore.cli._params import parse_number

        return parse_number(raw, f"{TTL_ENV} (seconds)", minimum=0.0)
    return DEFAULT_TTL


def _path(app: AppContext) -> Path:
    from clore._paths import cache_dir

    digest = hashlib.sha256(app.endpoint_label.encode()).hexdigest()[:16]
    return cache_dir() / "market" / f"{digest}.json"


def _read(path: Path) -> Any:
    import msgspec

    from clore.cli._cachefile import CacheFile

    try:
        return msgspec.json.decode(path.read_bytes(), type=CacheFile, strict=False)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def _write(path: Path, document: Any) -> None:
    import msgspec

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(msgspec.json.encode(document))
    os.replace(tmp, path)


def invalidate(app: AppContext) -> None:
    """Forget the cached listing (after renting or cancelling changes the market)."""
    path = _path(app)
    cached = _read(path)
    if cached is None:
        return
    from clore.cli._cachefile import CacheFile

    # Rates stay valid; only the listing is dropped.
    _write(path, CacheFile(endpoint=cached.endpoint, rates=cached.rates, rates_at=cached.rates_at))


def _fetch_rates(app: AppContext, servers: list[Server]) -> tuple[dict[str, float] | None, str]:
    from clore import CloreError

    if not servers:
        return None, "the marketplace is empty"
    if not app.has_key():
        return None, "spot_marketplace needs an API key"
    target = next((s for s in servers if not s.rented), servers[0])
    try:
        with app.out.waiting("fetching USD rates (spot_marketplace)"):
            spot = app.client().spot_marketplace(target.id)
    except CloreError as exc:
        return None, f"spot_marketplace failed: {exc}"
    rates = {name: float(value) for name, value in spot.currency_rates_in_usd.items() if value}
    return (rates or None), ("" if rates else "spot_marketplace returned no rates")


def load(
    app: AppContext,
    *,
    refresh: bool = False,
    max_age: float | None = None,
    rates: bool = True,
) -> MarketData:
    """The marketplace (from the cache when fresh enough) and, with ``rates``, USD rates."""
    from clore.cli._cachefile import CacheFile

    path = _path(app)
    now = app.clock.time()
    cached = None if refresh else _read(path)
    servers: list[Server] | None = None
    fetched_at = now
    lifetime = ttl(max_age)
    if (
        cached is not None
        and cached.servers is not None
        and cached.fetched_at is not None
        and 0 <= now - cached.fetched_at <= lifetime
    ):
        servers, fetched_at = list(cached.servers), cached.fetched_at
    from_cache = servers is not None
    if servers is None:
        servers = list(app.api(auth=False).marketplace())
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
        rate_table, note = _fetch_rates(app, servers)
        rates_at = now if rate_table else None
    if not from_cache or rates_at == now:
        document = CacheFile(
            endpoint=app.endpoint_label,
            fetched_at=fetched_at,
            servers=servers,
            rates=rate_table,
            rates_at=rates_at,
        )
        _write(path, document)
    return MarketData(servers, fetched_at, from_cache, rate_table, note or None)


def find_server(data: MarketData, server_id: int) -> Server:
    """The server with ``server_id`` in ``data``; exit 4 when the marketplace lacks it."""
    for server in data.servers:
        if server.id == server_id:
            return server
    raise CliError(f"server {server_id} is not on the marketplace", 4)
