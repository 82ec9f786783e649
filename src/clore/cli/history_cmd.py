"""``clore market record | stats | history`` and ``clore sandbox history``: the market's past.

A face over ``clore.market.history``: options are parsed here, everything else (storage,
statistics, charts, exports, the simulation) is the library's. The commands are attached
lazily by their groups: ``record``, ``stats`` and ``show`` (named ``history``) by
``clore market`` (``clore.cli.market``), ``generate`` (named ``history``) by
``clore sandbox``.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import click

from clore.cli._context import EXIT_INTERRUPTED, EXIT_USAGE, AppContext, CliError, pass_app
from clore.cli._format import amount, duration
from clore.cli._history import history_errors, open_history
from clore.cli._output import Column, json_option, listing_options

if TYPE_CHECKING:
    from clore.market.history import HistoryStore, MarketStats, ModelStats, Series

__all__ = ["generate", "record", "show", "stats"]

_FILTERS_HELP = (
    "FILTER words are the `clore market` filter language (gpus>=2 cc=US,DE 'price<0.5usd/h'); "
    "--model picks an exact GPU model (4090 is not 4090 D nor 4090 Laptop)."
)


def _duration(text: str, option: str) -> float:
    from clore.market.history import parse_duration

    with history_errors(option):
        return parse_duration(text)


def _time(app: AppContext, text: str, option: str) -> float:
    from clore.market.history import parse_time

    with history_errors(option):
        return parse_time(text, app.server_time())


def _currency(text: str) -> str:
    from clore.market import parse_currency

    try:
        return parse_currency(text)
    except ValueError as exc:
        raise CliError(f"--currency: {exc}", EXIT_USAGE) from None


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


_DB = click.option(
    "--db",
    metavar="PATH",
    help="History database (default: one per market in the data dir; see history --info).",
)
_CURRENCY = click.option(
    "--currency",
    "-c",
    default="btc",
    show_default=True,
    metavar="C",
    help="Currency of the prices: btc, clore or usd (USD figures are shown too).",
)
_MODEL = click.option("--model", "-m", metavar="MODEL", help="An exact GPU model: 4090, A100.")


# ---- record ------------------------------------------------------------------------------


@click.command(short_help="Record marketplace snapshots (change-only) into the history.")
@click.option(
    "--interval",
    default="5m",
    show_default=True,
    metavar="DURATION",
    help="Time between snapshots (at least 60s, the API's advice): 90s, 5m, 1h.",
)
@click.option("--for", "for_", metavar="DURATION", help="Stop after this long (24h, 7d).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after N snapshots.")
@_DB
@json_option
@pass_app
def record(
    app: AppContext, interval: str, for_: str | None, count: int | None, db: str | None
) -> None:
    """Record marketplace snapshots until stopped (Ctrl-C), --for a time or --count.

    Each snapshot stores only the servers that changed (price, rented, listed, specs,
    rating), with the USD rates of the moment (when an API key is configured). A restart
    continues the same history without duplicates. One progress line per snapshot goes
    to stderr; with --json a summary document is printed at the end.
    """
    from clore.market.history import record_loop

    seconds = _duration(interval, "--interval")
    if for_ is not None and count is not None:
        raise CliError("--for and --count exclude each other", EXIT_USAGE)
    duration = _duration(for_, "--for") if for_ is not None else None
    client = app.api(auth=False)
    rates_every = 600.0 if app.has_key() else None
    if rates_every is None:
        app.out.info("note: no API key: recording without USD rates (spot_marketplace needs one)")
    store = open_history(app, db, recording=True)
    taken = changed = errors = 0
    try:
        with history_errors():
            loop = record_loop(
                client,
                store,
                clock=app.clock,
                interval=seconds,
                count=count,
                duration=duration,
                rates_every=rates_every,
            )
            for event in loop:
                line, took = _progress(event, store)
                app.out.info(line)
                taken += took
                changed += event.result.changed if event.result else 0
                errors += event.error is not None
    except KeyboardInterrupt:
        app.out.info(f"recording stopped (Ctrl-C): {taken} snapshot(s) kept in {store.path}")
        store.close()
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    size = store.size_bytes()
    path = store.path
    store.close()
    document = {
        "db": path,
        "snapshots": taken,
        "changed": changed,
        "errors": errors,
        "size_bytes": size,
    }
    app.out.result(
        document,
        lambda: app.out.echo(
            f"{taken} snapshot(s), {changed} change row(s); {path} ({_size(size)})"
        ),
    )


def _progress(event: Any, store: HistoryStore) -> tuple[str, int]:
    from clore.market.history import format_time

    if event.error is not None:
        return f"clore: snapshot {event.number} failed ({event.error}); trying at the next", 0
    result = event.result
    when = format_time(result.at)
    if result.skipped:
        return f"clore: {when}: not newer than the last snapshot; skipped", 0
    note = f"; {event.rates_note}" if event.rates_note else ""
    return (
        f"clore: {when}: {result.servers} listed, {result.changed} changed, "
        f"{result.offline} left (db {_size(store.size_bytes())}){note}",
        1,
    )


# ---- stats -------------------------------------------------------------------------------


@click.command(
    epilog=_FILTERS_HELP, short_help="The market per exact GPU model, now or --at a moment."
)
@click.argument("filters", nargs=-1, metavar="[FILTER]...")
@_MODEL
@click.option("--at", "at_", metavar="TIME", help="A recorded moment: 2024-05-01T12:00, 3h ago.")
@click.option(
    "--window",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Clearing prices over this period before the moment.",
)
@_CURRENCY
@_DB
@listing_options(
    "model", "listed", "avail", "occ", "min", "p10", "median", "p90", "max", "median_usd",
    "usd_gpu_h", "cleared", "clearing",
)  # fmt: skip
@json_option
@pass_app
def stats(
    app: AppContext,
    filters: tuple[str, ...],
    model: str | None,
    at_: str | None,
    window: str,
    currency: str,
    db: str | None,
) -> None:
    """The market per exact GPU model, now (the last snapshot) or --at a recorded moment.

    Servers listed, available and rented (occupancy), and the asks of available servers
    per GPU-day as min / p10 / median / p90 / max: each host counts once (the median of
    its listings) in p10/median/p90; min and max are over all listings. Clearing: the
    asks, just before, of servers rented in the --window.
    """
    from clore.market.history import Selection, stats_at, stats_document

    cur = _currency(currency)
    selection = Selection.parse(filters, model)
    moment = _time(app, at_, "--at") if at_ is not None else None
    seconds = _duration(window, "--window")
    store = open_history(app, db)
    try:
        with history_errors():
            result = stats_at(store, selection, at=moment, currency=cur, window=seconds)
    finally:
        store.close()
    app.out.result(stats_document(result), lambda: _stats_table(app, result))


def _stats_table(app: AppContext, result: MarketStats) -> None:
    from clore.market import USD, label
    from clore.market.history import format_time

    cur = result.currency
    unit = label(cur)

    def row(m: ModelStats, name: str) -> list[str]:
        p, u, c = m.price, m.price_usd, m.clearing
        occ = "—" if m.occupancy is None else f"{m.occupancy:.0%}"
        cells = [
            name,
            str(m.listed),
            str(m.available),
            occ,
            amount(p.min if p else None, cur),
            amount(p.p10 if p else None, cur),
            amount(p.median if p else None, cur),
            amount(p.p90 if p else None, cur),
            amount(p.max if p else None, cur),
        ]
        if cur != USD:
            cells.append(amount(u.median if u else None, USD))
        cells += [
            amount(u.median / 24 if u else None, USD),
            str(c.count if c else 0),
            amount(c.median if c else None, cur),
        ]
        return cells

    columns = [
        Column("Model", "left", 99, "model"),
        Column("Listed", "right", 8, "listed"),
        Column("Avail", "right", 98, "avail"),
        Column("Occ", "right", 7, "occ"),
        Column(f"min {unit}", "right", 6, "min"),
        Column("p10", "right", 5, "p10"),
        Column(f"median {unit}", "right", 97, "median"),
        Column("p90", "right", 5, "p90"),
        Column("max", "right", 3, "max"),
    ]
    if cur != USD:
        columns.append(Column("median USD", "right", 9, "median_usd"))
    columns += [
        Column("USD/GPU-h", "right", 4, "usd_gpu_h"),
        Column("Cleared", "right", 6, "cleared"),
        Column("clearing", "right", 6, "clearing"),
    ]
    rows = [row(m, m.model or "—") for m in result.models]
    if len(result.models) > 1:
        rows.append(row(result.total, "all"))
    rates = "no USD rates recorded" if not result.rates else "USD at the recorded rates"
    app.out.table(
        columns,
        rows,
        title=f"{result.selection.describe()} at {format_time(result.at)} (snapshot "
        f"{result.snapshot}); asks per GPU-day",
        caption=f"p10/median/p90: one value per host (median of its listings); min/max: all "
        f"listings; cleared: rentals in the {duration(result.window)} before; {rates}",
    )


# ---- history (the series; the function is ``show``) ----------------------------------------


@click.command(
    "history",
    epilog=_FILTERS_HELP,
    short_help="Prices and availability over time: a chart, a table, JSON, CSV, Parquet.",
)
@click.argument("filters", nargs=-1, metavar="[FILTER]...")
@_MODEL
@click.option("--since", default="7d", show_default=True, metavar="TIME", help="Start: 7d, ISO.")
@click.option("--until", metavar="TIME", help="End (default: the last snapshot).")
@click.option("--bucket", metavar="DURATION", help="Point spacing (default: at most 100 points).")
@_CURRENCY
@click.option("--csv", "as_csv", is_flag=True, help="The series as CSV on stdout.")
@click.option("--parquet", metavar="PATH", help="Export the raw rows of the period (pyarrow).")
@click.option("--info", is_flag=True, help="Where the database is, its size and span.")
@click.option(
    "--chart/--table",
    "chart",
    default=None,
    help="Force a chart or a table (default: a chart on a terminal, else a table).",
)
@_DB
@json_option
@pass_app
def show(
    app: AppContext,
    filters: tuple[str, ...],
    model: str | None,
    since: str,
    until: str | None,
    bucket: str | None,
    currency: str,
    as_csv: bool,
    parquet: str | None,
    info: bool,
    chart: bool | None,
    db: str | None,
) -> None:
    """Prices and availability over time: the median ask per GPU-day, the p10–p90 band
    and the servers available, per bucket, as a chart on a terminal (a table when piped),
    or --json / --csv; --parquet exports the raw rows; --info describes the database.

    Each point is the market at the last snapshot of its bucket, by the rules of
    `clore market stats`, plus the rentals (clearing prices) of the whole bucket.
    """
    from clore.market.history import Selection, info_document, series, write_parquet

    store = open_history(app, db)
    try:
        if info:
            doc = info_document(store.info())
            app.out.result(doc, lambda: _info_fields(app, doc))
            return
        cur = _currency(currency)
        selection = Selection.parse(filters, model)
        start = _time(app, since, "--since")
        end = _time(app, until, "--until") if until is not None else None
        step = int(_duration(bucket, "--bucket")) if bucket else None
        if step is not None and step < 1:
            raise CliError("--bucket: at least 1s", EXIT_USAGE)
        with history_errors():
            if parquet is not None:
                rows, snaps = write_parquet(store, parquet, selection, since=start, until=end)
                doc = {"path": parquet, "rows": rows, "snapshots": snaps}
                app.out.result(
                    doc, lambda: app.out.echo(f"{rows} rows of {snaps} snapshots: {parquet}")
                )
                return
            result = series(store, selection, since=start, until=end, bucket=step, currency=cur)
    finally:
        store.close()
    _show_series(app, result, as_csv, chart)


def _info_fields(app: AppContext, doc: dict[str, Any]) -> None:
    from clore.market.history import format_time

    def when(t: float | None) -> str:
        return "—" if t is None else format_time(t)

    app.out.fields(
        [
            ("database", str(doc["path"])),
            ("size", _size(int(doc["size_bytes"]))),
            ("snapshots", str(doc["snapshots"])),
            ("from", when(doc["first"])),
            ("to", when(doc["last"])),
            ("servers", str(doc["servers"])),
            ("change rows", str(doc["change_rows"])),
        ],
        title="market history",
    )


def _show_series(app: AppContext, result: Series, as_csv: bool, chart: bool | None) -> None:
    from clore.market.history import (
        TABLE_COLUMNS,
        chart_available,
        render_chart,
        series_csv,
        series_document,
        series_table,
    )

    out = app.out
    if len(result.models) > 1:
        out.info(
            f"note: the selection holds {len(result.models)} models; --model picks one "
            "(prices of different models share one median here)"
        )
    if out.json_mode:
        out.json(series_document(result))
        return
    if as_csv:
        out.stdout.write(series_csv(result))
        return
    wants_chart = out.tty if chart is None else chart
    if wants_chart and not chart_available():
        out.info("note: charts need plotext: pip install 'clore[history]'; a table instead")
        wants_chart = False
    if wants_chart:
        width = shutil.get_terminal_size((80, 24)).columns if out.tty else 80
        text = render_chart(result, width=max(40, min(width, 160)), color=out.color)
        click.echo(text, file=out.stdout)
        return
    columns = [Column(h, "left" if i == 0 else "right") for i, h in enumerate(TABLE_COLUMNS)]
    out.table(columns, series_table(result))


# ---- sandbox history (``generate``) -------------------------------------------------------


@click.command("history", short_help="Generate a recorded market past for the sandbox.")
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True, max=366),
    default=30.0,
    show_default=True,
    help="Simulated days of history, ending now.",
)
@click.option("--interval", default="5m", show_default=True, metavar="DURATION")
@click.option("--rng-seed", type=int, default=0, show_default=True, help="Simulation seed.")
@click.option("--replace", is_flag=True, help="Delete the database first.")
@_DB
@json_option
@pass_app
def generate(
    app: AppContext, days: float, interval: str, rng_seed: int, replace: bool, db: str | None
) -> None:
    """Generate a plausible recorded past for the sandbox, in seconds.

    A market simulation over the bundled 3,500-server capture (rentals following the
    day's demand and favouring cheap servers, hosts repricing, outages, drifting rates)
    is written as snapshots every --interval for --days, ending now, into the sandbox's
    history (`clore --sandbox market history`) or --db.
    """
    from clore.market.history import SANDBOX, default_path, generate, open_store, remove_store

    step = _duration(interval, "--interval")
    target = db or str(default_path(SANDBOX))
    if replace:
        remove_store(target)
    with history_errors():
        store = open_store(target, endpoint=SANDBOX, recording=True)
    try:
        with history_errors(), app.out.waiting("generating the history") as waiter:

            def progress(done: int, total: int) -> None:
                waiter.update(f"generating the history: {done} of {total} snapshots")

            made = generate(
                store,
                days=days,
                interval=step,
                end=app.server_time(),
                rng_seed=rng_seed,
                progress=progress,
            )
        size = store.size_bytes()
    finally:
        store.close()
    document = {
        "db": target,
        "snapshots": made.snapshots,
        "change_rows": made.change_rows,
        "first": made.first,
        "last": made.last,
        "servers": made.servers,
        "size_bytes": size,
    }
    app.out.result(
        document,
        lambda: app.out.echo(
            f"{made.snapshots} snapshots of {made.servers} servers "
            f"({made.change_rows} change rows) in {target} ({_size(size)})"
        ),
    )
