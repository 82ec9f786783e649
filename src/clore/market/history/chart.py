"""Pictures of a series: a terminal chart (plotext) and the same points as a table.

The chart has two panels: above, the median ask per GPU-day and the p10–p90 band (two
lines); below, how many servers were available. ``render_chart`` returns the text, at
most ``width`` columns wide; with ``color=False`` it holds no escape codes at all (the
CLI passes ``NO_COLOR``, and a terminal check, in). plotext is an optional dependency
(``pip install 'clore[history]'``); ``chart_available`` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
import re
from datetime import datetime, timezone
from typing import Any, Final

from clore.market.history.export import MissingExtraError
from clore.market.history.replay import Series
from clore.market.history.times import format_duration, format_time
from clore.market.pricing import format_amount, label

__all__ = ["TABLE_COLUMNS", "chart_available", "render_chart", "series_table"]

_ANSI: Final = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

#: Headers of ``series_table``; the first two are left-aligned, the rest right-aligned.
TABLE_COLUMNS: Final = (
    "time",
    "listed",
    "avail",
    "occ",
    "p10",
    "median",
    "p90",
    "min",
    "cleared",
    "clearing",
)


def chart_available() -> bool:
    """True when plotext (the ``history`` extra) is installed."""
    return importlib.util.find_spec("plotext") is not None


def _tick_labels(start: float, end: float, count: int) -> tuple[list[float], list[str]]:
    span = max(end - start, 1.0)
    fmt = "%H:%M" if span <= 86400 else "%m-%d" if span > 3 * 86400 else "%m-%d %H:%M"
    positions = [start + span * i / (count - 1) for i in range(count)]
    labels = [datetime.fromtimestamp(t, timezone.utc).strftime(fmt) for t in positions]
    return [(p - start) / 3600.0 for p in positions], labels


def render_chart(series: Series, *, width: int = 80, height: int = 24, color: bool = True) -> str:
    """The chart as text (see the module); ``MissingExtraError`` without plotext."""
    try:
        import plotext as plt  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise MissingExtraError("charts need plotext: pip install 'clore[history]'") from None
    points = series.points
    xs = [(p.t - series.since) / 3600.0 for p in points]
    priced = [(x, p.stats.price) for x, p in zip(xs, points, strict=True) if p.stats.price]
    unit = f"{label(series.currency)}/GPU-day"
    what = series.selection.describe()
    _reset(plt)
    plt.subplots(2, 1)
    plt.plotsize(width, height)
    plt.theme("clear" if not color else "pro")
    top = plt.subplot(1, 1)
    top.plotsize(width, max(8, height * 2 // 3))
    if priced:
        px = [x for x, _ in priced]
        # Without colour the lines differ by their marks: the band dotted, the median solid.
        band = "dot" if not color else "hd"
        plt.plot(px, [s.p90 for _, s in priced], label="p90", color="gray", marker=band)
        plt.plot(px, [s.median for _, s in priced], label="median", color="green", marker="hd")
        plt.plot(px, [s.p10 for _, s in priced], label="p10", color="gray", marker=band)
        # Asks spread over orders of magnitude (a few hosts list at absurd prices, and
        # they are the ones left unrented): a log scale keeps the median readable.
        plt.yscale("log")
    plt.title(f"{what}: ask {unit}, median and p10–p90 ({format_duration(series.bucket)})")
    ticks, labels = _tick_labels(series.since, series.until, 4)
    plt.xticks(ticks, labels)
    bottom = plt.subplot(2, 1)
    bottom.plotsize(width, max(5, height - height * 2 // 3))
    plt.plot(xs, [float(p.stats.available) for p in points], label="available", color="cyan")
    plt.xticks(ticks, labels)
    plt.title("servers available")
    text: str = plt.build()
    _reset(plt)
    if not color:
        text = _ANSI.sub("", text)
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(_clip(line, width) for line in lines)


def _reset(plt: Any) -> None:
    """Clear plotext's whole figure (its ``clf`` clears only the active subplot)."""
    plt.main()
    plt.clf()


def _clip(line: str, width: int) -> str:
    visible = _ANSI.sub("", line)
    return line if len(visible) <= width else visible[:width]


def series_table(series: Series) -> list[list[str]]:
    """The points as table rows (``TABLE_COLUMNS``), prices per GPU-day in the currency."""
    cur = series.currency
    rows: list[list[str]] = []
    for point in series.points:
        s = point.stats
        p = s.price
        occ = "—" if s.occupancy is None else f"{s.occupancy:.0%}"
        rows.append(
            [
                format_time(point.t),
                str(s.listed),
                str(s.available),
                occ,
                format_amount(p.p10 if p else None, cur),
                format_amount(p.median if p else None, cur),
                format_amount(p.p90 if p else None, cur),
                format_amount(p.min if p else None, cur),
                str(s.clearing.count if s.clearing else 0),
                format_amount(s.clearing.median if s.clearing else None, cur),
            ]
        )
    return rows
