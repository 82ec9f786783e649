"""The documents of the history: JSON and CSV schemas, Parquet, the chart and the table,
and the generated past they are drawn from."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from clore.market.history import (
    PARQUET_COLUMNS,
    SERIES_CSV_COLUMNS,
    TABLE_COLUMNS,
    HistoryError,
    HistoryStore,
    Selection,
    Series,
    capture_servers,
    generate,
    render_chart,
    series,
    series_csv,
    series_document,
    series_table,
    stats_at,
    stats_document,
    write_parquet,
)

END = 1_700_000_000.0
PRICE_KEYS = {"count", "hosts", "min", "p10", "median", "p90", "max"}
MODEL_KEYS = {
    "listed",
    "available",
    "rented",
    "occupancy",
    "gpus",
    "gpus_available",
    "price",
    "price_usd",
    "price_per_hour",
    "price_usd_per_hour",
    "clearing",
    "clearing_usd",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated days, one snapshot every 30 minutes (shared by this module's tests)."""
    path = tmp_path_factory.mktemp("history") / "generated.db"
    with HistoryStore(path) as store:
        generate(store, days=2, interval=1800, end=END, servers=capture_servers())
    return path


@pytest.fixture
def week(generated: Path) -> Series:
    with HistoryStore(generated) as store:
        return series(store, Selection(model="4090"), since=END - 2 * 86400, currency="bitcoin")


def test_generation_is_deterministic_and_complete(tmp_path: Path, generated: Path) -> None:
    """The same seed gives the same history; 2 days at 30 minutes are 96 snapshots."""
    again = tmp_path / "again.db"
    with HistoryStore(again) as store:
        made = generate(store, days=2, interval=1800, end=END)
        second = store.info()
    with HistoryStore(generated) as store:
        first = store.info()
    assert (96, first.snapshots, first.change_rows) == (
        made.snapshots,
        second.snapshots,
        second.change_rows,
    )


def test_generation_refuses_a_period_already_recorded(generated: Path) -> None:
    """Generating over an existing history would interleave two pasts: refused."""
    with HistoryStore(generated) as store, pytest.raises(HistoryError, match="already holds"):
        generate(store, days=1, interval=1800, end=END)


def test_the_series_document_has_its_schema(week: Series) -> None:
    """schema, selection, bucket and points with the model fields, all JSON-encodable."""
    doc = json.loads(json.dumps(series_document(week)))
    point = doc["points"][0]
    assert (
        doc["schema"],
        doc["selection"],
        set(point) - {"t", "time", "at"},
        set(point["price"]),
        len(doc["points"]),
    ) == (
        "clore.market.history.series/1",
        {"model": "4090", "filters": []},
        MODEL_KEYS,
        PRICE_KEYS,
        len(week.points),
    )


def test_the_series_csv_has_its_columns(week: Series) -> None:
    """A header of SERIES_CSV_COLUMNS and one line per point, numbers where known."""
    table = list(csv.reader(io.StringIO(series_csv(week))))
    header, first = table[0], dict(zip(table[0], table[1], strict=True))
    assert (tuple(header), len(table) - 1, float(first["median"]) > 0) == (
        SERIES_CSV_COLUMNS,
        len(week.points),
        True,
    )


def test_the_stats_document_has_its_schema(generated: Path) -> None:
    """One entry per model, a total, and the rule stated."""
    with HistoryStore(generated) as store:
        doc = json.loads(json.dumps(stats_document(stats_at(store, Selection()))))
    assert (
        doc["schema"],
        set(doc["total"]) - {"model"},
        "per host" in doc["rules"] or "one value per host" in doc["rules"],
        doc["total"]["listed"] == sum(m["listed"] for m in doc["models"]),
    ) == ("clore.market.history.stats/1", MODEL_KEYS, True, True)


def test_parquet_exports_the_raw_rows(generated: Path, tmp_path: Path) -> None:
    """The change rows (and the start state) of the period, and the snapshots beside them."""
    pq = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "rows.parquet"
    with HistoryStore(generated) as store:
        rows, snaps = write_parquet(store, target, Selection(model="4090"), since=END - 86400)
    table = pq.read_table(target)
    snapshots = pq.read_table(tmp_path / "rows.snapshots.parquet")
    assert (
        tuple(table.column_names),
        table.num_rows,
        set(table.column("model").to_pylist()),
        snapshots.column_names,
        snapshots.num_rows,
    ) == (
        PARQUET_COLUMNS,
        rows,
        {"RTX 4090"},
        ["snapshot", "t", "listed", "rate_bitcoin", "rate_clore"],
        snaps,
    )


@pytest.mark.parametrize("width", [80, 60])
def test_the_chart_fits_the_width_without_colour(week: Series, width: int) -> None:
    """NO_COLOR: no escape code at all; every line within the width."""
    pytest.importorskip("plotext")
    text = render_chart(week, width=width, color=False)
    lines = text.splitlines()
    assert ("\x1b" in text, max(len(line) for line in lines) <= width, len(lines) > 10) == (
        False,
        True,
        True,
    )


def test_the_chart_in_colour_fits_the_width_too(week: Series) -> None:
    """With colour, escape codes are there and the visible width is still 80."""
    pytest.importorskip("plotext")
    text = render_chart(week, width=80, color=True)
    visible = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    assert ("\x1b" in text, max(len(line) for line in visible.splitlines())) == (True, 80)


def test_the_chart_says_what_it_shows(week: Series) -> None:
    """Its title names the selection, the currency unit and the band."""
    pytest.importorskip("plotext")
    text = render_chart(week, width=80, color=False)
    assert (
        "model 4090" in text,
        "BTC/GPU-day" in text,
        "p10–p90" in text,
        "available" in text,
    ) == (
        True,
        True,
        True,
        True,
    )


def test_the_table_has_a_row_per_point(week: Series) -> None:
    """The plain table (for pipes) has the points in order, in TABLE_COLUMNS."""
    rows = series_table(week)
    assert (len(rows), {len(r) for r in rows}, rows == sorted(rows)) == (
        len(week.points),
        {len(TABLE_COLUMNS)},
        True,
    )
