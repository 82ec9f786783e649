"""Market history: record the marketplace over time, and say what prices do.

* ``HistoryStore`` (``store``): snapshots in SQLite, stored change-only (``rows`` says
  what a row holds), at ``default_path()`` in the data directory unless told otherwise;
* ``record_loop`` (``recorder``): fetch and store every interval;
* ``stats_at``, ``series`` (``replay``) with the rules of ``stats``
  (per exact GPU model, per host, clearing prices);
* ``stats_document``, ``series_document``, ``series_csv``, ``write_parquet`` (``export``);
  ``render_chart``, ``series_table`` (``chart``);
* ``parse_condition``, ``check``, ``window_stats``, ``Episodes``, ``HistoryAlert``
  (``alerts``): conditions on the market and its past for ``clore watch``;
* ``generate`` (``simulate``): a plausible past for the sandbox, quickly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from clore.market.history.alerts import (
    METRICS,
    Condition,
    Episodes,
    HistoryAlert,
    Verdict,
    check,
    metric_value,
    parse_condition,
    window_stats,
)
from clore.market.history.chart import TABLE_COLUMNS, chart_available, render_chart, series_table
from clore.market.history.export import (
    PARQUET_COLUMNS,
    SERIES_CSV_COLUMNS,
    MissingExtraError,
    info_document,
    series_csv,
    series_document,
    stats_document,
    write_parquet,
)
from clore.market.history.recorder import MIN_INTERVAL, Recorded, record_loop, record_once
from clore.market.history.replay import (
    MarketStats,
    Series,
    SeriesPoint,
    auto_bucket,
    listings_of,
    series,
    stats_at,
)
from clore.market.history.rows import (
    HistoryError,
    NoHistoryError,
    RecordResult,
    Snapshot,
    StoreInfo,
)
from clore.market.history.simulate import Generated, capture_servers, generate
from clore.market.history.stats import Listing, ModelStats, PriceStats, Selection, summarize
from clore.market.history.store import HistoryStore
from clore.market.history.times import format_duration, format_time, parse_duration, parse_time

__all__ = [
    "METRICS",
    "MIN_INTERVAL",
    "PARQUET_COLUMNS",
    "SANDBOX",
    "SERIES_CSV_COLUMNS",
    "TABLE_COLUMNS",
    "Condition",
    "Episodes",
    "Generated",
    "HistoryAlert",
    "HistoryError",
    "HistoryStore",
    "Listing",
    "MarketStats",
    "MissingExtraError",
    "ModelStats",
    "NoHistoryError",
    "PriceStats",
    "RecordResult",
    "Recorded",
    "Selection",
    "Series",
    "SeriesPoint",
    "Snapshot",
    "StoreInfo",
    "Verdict",
    "auto_bucket",
    "capture_servers",
    "chart_available",
    "check",
    "default_path",
    "format_duration",
    "format_time",
    "generate",
    "info_document",
    "listings_of",
    "metric_value",
    "open_store",
    "parse_condition",
    "parse_duration",
    "parse_time",
    "record_loop",
    "record_once",
    "remove_store",
    "render_chart",
    "series",
    "series_csv",
    "series_document",
    "series_table",
    "stats_at",
    "stats_document",
    "summarize",
    "window_stats",
    "write_parquet",
]

#: The ``endpoint`` of the embedded sandbox (``clore --sandbox``) and of generated history.
SANDBOX: Final = "sandbox"


def default_path(endpoint: str | None = None) -> Path:
    """Where the history of ``endpoint`` is kept: one file per API, in the data directory.

    ``None`` or the real API's URL: ``market-history.db``; ``"sandbox"`` (the embedded
    sandbox, and ``generate``'s default): ``market-history-sandbox.db``; any other base
    URL (a sandbox server): ``market-history-<hash of the URL>.db``. Histories of
    different markets never mix.
    """
    from clore._paths import data_dir
    from clore.config import DEFAULT_BASE_URL

    if endpoint in (None, "", "default", DEFAULT_BASE_URL, DEFAULT_BASE_URL + "/"):
        name = "market-history.db"
    elif endpoint == SANDBOX:
        name = "market-history-sandbox.db"
    else:
        digest = hashlib.sha256(str(endpoint).rstrip("/").encode()).hexdigest()[:12]
        name = f"market-history-{digest}.db"
    return data_dir() / name


def open_store(
    path: str | Path | None = None, *, endpoint: str | None = None, recording: bool = False
) -> HistoryStore:
    """Open (creating when missing) the history at ``path``, else ``default_path(endpoint)``.

    A store remembers the endpoint it was first recorded from; recording into it from
    another (``recording=True``) is a ``HistoryError``, so a sandbox's past never lands
    in the real market's file, whatever ``--db`` says.
    """
    target = Path(path) if path is not None else default_path(endpoint)
    store = HistoryStore(target)
    if recording:
        label = endpoint or "default"
        recorded = store.meta("endpoint")
        if recorded is None:
            store.set_meta("endpoint", label)
        elif recorded != label:
            store.close()
            raise HistoryError(f"{target} holds the history of {recorded}, not of {label}")
    return store


def remove_store(path: str | Path) -> bool:
    """Delete a history database and its journal files; False when there was none."""
    target = Path(path)
    found = target.exists()
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    return found
