"""The history's documents: JSON and CSV of stats and series, and Parquet of the raw rows.

Schemas (``schema`` names the document and its version; fields are only ever added):

* ``clore.market.history.stats/1``: ``at``, ``time``, ``snapshot``, ``currency``,
  ``rates`` (USD per unit, or null), ``clearing_window_seconds``, ``selection``
  (``model``, ``filters``), ``rules``, ``models`` (one object per exact model) and
  ``total``; each with ``model``, ``listed``, ``available``, ``rented``, ``occupancy``,
  ``gpus``, ``gpus_available``, and price objects ``price``/``price_usd`` (per GPU-day),
  ``price_per_hour``/``price_usd_per_hour`` and ``clearing``/``clearing_usd``, each
  ``{count, hosts, min, p10, median, p90, max}`` or null.
* ``clore.market.history.series/1``: ``currency``, ``selection``, ``models``, ``since``,
  ``until``, ``bucket_seconds``, ``rules`` and ``points``: ``t`` (bucket start), ``time``,
  ``at`` (the snapshot sampled), then the model fields above.
* CSV of a series: one line per point, the columns of ``SERIES_CSV_COLUMNS``.
* Parquet (``write_parquet``, needs pyarrow: ``pip install 'clore[history]'``): the change
  rows of the period with their snapshot time (and each selected server's state at the
  start), columns ``PARQUET_COLUMNS``; and beside it ``<name>.snapshots.parquet``:
  ``snapshot``, ``t``, ``listed``, ``rate_bitcoin``, ``rate_clore``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from clore.market.history.replay import MarketStats, Series, Timeline
from clore.market.history.rows import CURRENCY_COLUMNS, HistoryError, NoHistoryError
from clore.market.history.stats import ModelStats, PriceStats, Selection
from clore.market.history.times import format_time

if TYPE_CHECKING:
    from clore.market.history.rows import StoreInfo
    from clore.market.history.store import HistoryStore

__all__ = [
    "PARQUET_COLUMNS",
    "SERIES_CSV_COLUMNS",
    "MissingExtraError",
    "info_document",
    "series_csv",
    "series_document",
    "stats_document",
    "write_parquet",
]

#: The statistical rules in one line (``clore.market.history.stats`` states them in full).
RULES: Final = (
    "prices: on-demand asks of available servers per GPU-day; "
    "p10/median/p90 over one value per host (the median of its listings), min/max over all "
    "listings; percentiles interpolate linearly between ranks; clearing: the ask just before "
    "of each server that went from available to rented, each event once"
)

SERIES_CSV_COLUMNS: Final = (
    "t",
    "time",
    "at",
    "listed",
    "available",
    "rented",
    "occupancy",
    "gpus",
    "gpus_available",
    "hosts",
    "min",
    "p10",
    "median",
    "p90",
    "max",
    "usd_min",
    "usd_p10",
    "usd_median",
    "usd_p90",
    "usd_max",
    "clearing_count",
    "clearing_median",
    "clearing_usd_median",
)

PARQUET_COLUMNS: Final = (
    "t",
    "snapshot",
    "server",
    "model",
    "gpu",
    "gpus",
    "owner",
    "online",
    "rented",
    "on_demand_bitcoin",
    "on_demand_clore",
    "on_demand_usd",
    "spot_bitcoin",
    "spot_clore",
    "spot_usd",
    "rating",
    "ratings",
    "reliability",
)


class MissingExtraError(HistoryError):
    """An optional dependency is not installed; the message says how to install it."""


def _prices(stats: PriceStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {
        "count": stats.count,
        "hosts": stats.hosts,
        "min": stats.min,
        "p10": stats.p10,
        "median": stats.median,
        "p90": stats.p90,
        "max": stats.max,
    }


def _model(stats: ModelStats) -> dict[str, Any]:
    return {
        "model": stats.model,
        "listed": stats.listed,
        "available": stats.available,
        "rented": stats.rented,
        "occupancy": stats.occupancy,
        "gpus": stats.gpus,
        "gpus_available": stats.gpus_available,
        "price": _prices(stats.price),
        "price_usd": _prices(stats.price_usd),
        "price_per_hour": _prices(stats.price.scaled(1 / 24) if stats.price else None),
        "price_usd_per_hour": _prices(stats.price_usd.scaled(1 / 24) if stats.price_usd else None),
        "clearing": _prices(stats.clearing),
        "clearing_usd": _prices(stats.clearing_usd),
    }


def _selection(selection: Selection) -> dict[str, Any]:
    return {"model": selection.model, "filters": selection.words}


def stats_document(stats: MarketStats) -> dict[str, Any]:
    """The ``clore.market.history.stats/1`` document."""
    return {
        "schema": "clore.market.history.stats/1",
        "at": stats.at,
        "time": format_time(stats.at),
        "snapshot": stats.snapshot,
        "currency": stats.currency,
        "rates": stats.rates,
        "clearing_window_seconds": stats.window,
        "selection": _selection(stats.selection),
        "rules": RULES,
        "models": [_model(m) for m in stats.models],
        "total": _model(stats.total),
    }


def series_document(series: Series) -> dict[str, Any]:
    """The ``clore.market.history.series/1`` document."""
    points = []
    for point in series.points:
        doc = {"t": point.t, "time": format_time(point.t), "at": point.at}
        doc.update(_model(point.stats))
        del doc["model"]
        points.append(doc)
    return {
        "schema": "clore.market.history.series/1",
        "currency": series.currency,
        "selection": _selection(series.selection),
        "models": series.models,
        "since": series.since,
        "until": series.until,
        "bucket_seconds": series.bucket,
        "rules": RULES,
        "points": points,
    }


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def series_csv(series: Series) -> str:
    """The series as CSV (``SERIES_CSV_COLUMNS``; empty cells for unknown values)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SERIES_CSV_COLUMNS)
    for point in series.points:
        s = point.stats
        p, u = s.price, s.price_usd
        row = [
            point.t,
            format_time(point.t),
            point.at,
            s.listed,
            s.available,
            s.rented,
            s.occupancy,
            s.gpus,
            s.gpus_available,
            p.hosts if p else None,
            *((p.min, p.p10, p.median, p.p90, p.max) if p else (None,) * 5),
            *((u.min, u.p10, u.median, u.p90, u.max) if u else (None,) * 5),
            s.clearing.count if s.clearing else 0,
            s.clearing.median if s.clearing else None,
            s.clearing_usd.median if s.clearing_usd else None,
        ]
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def info_document(info: StoreInfo) -> dict[str, Any]:
    """``--info``: where the database is, its size and what it holds."""
    return {
        "path": info.path,
        "size_bytes": info.size_bytes,
        "snapshots": info.snapshots,
        "first": info.first,
        "last": info.last,
        "servers": info.servers,
        "change_rows": info.change_rows,
        "statics": info.statics,
        "rows_per_snapshot": info.change_rows / info.snapshots if info.snapshots else None,
    }


def _rate(rates: Mapping[str, float] | None, currency: str) -> float | None:
    return float(rates[currency]) if rates and currency in rates else None


def write_parquet(
    store: HistoryStore,
    path: str | Path,
    selection: Selection,
    *,
    since: float,
    until: float | None = None,
) -> tuple[int, int]:
    """Write the raw rows of the period (see the module); returns (rows, snapshots).

    Only the terms of the selection (model, filters on terms) narrow the rows: prices
    and the like are left for the analysis elsewhere.
    """
    try:
        # Optional and untyped: the `history` extra.
        import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise MissingExtraError("--parquet needs pyarrow: pip install 'clore[history]'") from None
    snapshots = store.snapshots(since, until)
    if not snapshots:
        raise NoHistoryError("no snapshot recorded in that period")
    terms_only = Selection(selection.model, selection.static_filters)
    timeline = Timeline(store, terms_only, "bitcoin")
    statics = store.statics()
    first, last = snapshots[0], snapshots[-1]
    # The start state's rows come from earlier snapshots: every time up to the end is needed.
    times = {s.id: s.t for s in store.snapshots(None, last.t)}
    start = list(store.state_at(first.id - 1, timeline.servers).values())
    rows = start + store.changes(first.id - 1, last.id, timeline.servers)
    rows = [r for r in rows if r[2] in timeline.terms]
    columns: dict[str, list[Any]] = {name: [] for name in PARQUET_COLUMNS}
    for r in rows:
        info = statics[r[2]]
        values = [
            times[r[1]],
            r[1],
            r[0],
            info.model,
            info.gpu,
            info.gpus,
            info.owner,
            bool(r[3]),
            None if r[4] is None else bool(r[4]),
            *r[5:11],
            r[11],
            r[12],
            r[13],
        ]
        for name, value in zip(PARQUET_COLUMNS, values, strict=True):
            columns[name].append(value)
    target = Path(path)
    table = pa.table(columns)
    pq.write_table(table, target)
    snaps = pa.table(
        {
            "snapshot": [s.id for s in snapshots],
            "t": [s.t for s in snapshots],
            "listed": [s.listed for s in snapshots],
            "rate_bitcoin": [_rate(s.rates, CURRENCY_COLUMNS[0]) for s in snapshots],
            "rate_clore": [_rate(s.rates, CURRENCY_COLUMNS[1]) for s in snapshots],
        }
    )
    pq.write_table(snaps, _snapshots_path(target))
    return len(rows), len(snapshots)


def _snapshots_path(path: Path) -> Path:
    """``prices.parquet`` -> ``prices.snapshots.parquet``."""
    stem = path.name[: -len(".parquet")] if path.name.endswith(".parquet") else path.name
    return path.with_name(f"{stem}.snapshots.parquet")
