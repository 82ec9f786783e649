"""Everything the CLI prints: JSON documents, JSON Lines, tables, detail views, notes and
progress (docs/cli.md, *Output rules*).

* **stdout holds results**: a command's table, detail view or result lines; a stream's
  events (``watch``, ``monitor``, ``orders --watch``), one line each. ``--json``: exactly
  one JSON document for a one-shot command, one JSON object per line (JSON Lines) for a
  stream; nothing else there.
* **stderr holds diagnostics** (notes, warnings, prompts, errors, the summary under a
  listing) and **progress** (spinners, ``clore: waiting for … …`` lines). Progress is
  written only when stderr is a terminal, or with ``-v``.
* Tables: rich (colour, a header rule) only when stdout is a terminal, fitted to its width
  by column priority with a one-line note naming what was left out; plain aligned text
  with every column when piped. ``--columns``, ``-o wide``, ``-q`` and ``--no-pager``
  (``listing_options``) choose; a terminal listing longer than the screen goes through
  the pager. ``NO_COLOR`` turns colour off in either case.

rich and msgspec are imported inside the functions that use them (fast ``--help``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal, overload

import click

__all__ = [
    "Column",
    "Output",
    "View",
    "Waiter",
    "json_lines_option",
    "json_option",
    "listing_options",
    "shorten_gpu",
]


def _name_of(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_")


@dataclass(frozen=True)
class Column:
    """A table column: header, alignment, priority and the name ``--columns`` knows it by.

    On a terminal too narrow for the whole table, columns of the lowest ``priority`` are
    left out first (piped output, ``-o wide`` and ``--json`` always have everything).
    ``name`` defaults to the header in lower case (``Time left`` -> ``time_left``).
    """

    header: str
    align: Literal["left", "right"] = "left"
    priority: int = 9
    name: str = ""

    @property
    def key(self) -> str:
        """The name ``--columns`` takes."""
        return self.name or _name_of(self.header)


@dataclass
class View:
    """How a listing is shown (``listing_options``): ``columns`` exactly (None: fitted to
    the terminal), ``wide`` (every column), ``quiet`` (ids only), ``pager``."""

    columns: tuple[str, ...] | None = None
    wide: bool = False
    quiet: bool = False
    pager: bool = True
    #: True when the command has the listing options (the notes may name them).
    options: bool = False


#: Width between two columns, on a terminal and piped alike.
_GAP = 2


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return int(cell_len(text))


def _sizes(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], measure: Callable[[str], int]
) -> list[int]:
    sizes = [measure(c.header) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            sizes[i] = max(sizes[i], measure(cell))
    return sizes


def _fit(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    keep: Sequence[int] | None = None,
) -> tuple[list[int], list[int]]:
    """The indexes of ``keep`` (default: all) that fit in ``width``, by priority, and the
    indexes left out (in table order)."""
    sizes = _sizes(columns, rows, _cell_len)
    chosen = list(range(len(columns))) if keep is None else list(keep)
    dropped: list[int] = []
    while sum(sizes[i] for i in chosen) + _GAP * (len(chosen) - 1) > width and len(chosen) > 1:
        victim = min(reversed(chosen), key=lambda i: columns[i].priority)
        chosen.remove(victim)
        dropped.append(victim)
    return chosen, sorted(dropped)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def shorten_gpu(model: str) -> str:
    """``NVIDIA GeForce RTX 4090`` -> ``RTX 4090`` (tables only; JSON keeps the full name)."""
    for prefix in ("NVIDIA GeForce ", "NVIDIA ", "AMD Radeon ", "AMD "):
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def _plain_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> str:
    widths = _sizes(columns, rows, len)

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if columns[i].align == "right" else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return (" " * _GAP).join(parts).rstrip()

    return "\n".join([line([c.header for c in columns]), *(line(row) for row in rows)])


class Waiter:
    """Handle of a running ``Output.waiting`` block: change its message while it waits."""

    def __init__(self, message: str, update: Callable[[str], None]) -> None:
        self.message = message
        self._update = update

    def update(self, message: str) -> None:
        """Replace the message shown while waiting."""
        self.message = message
        self._update(message)


class Output:
    """Where and how a command prints; one per invocation (``AppContext.out``)."""

    def __init__(
        self,
        json_mode: bool = False,
        *,
        tty: bool | None = None,
        err_tty: bool | None = None,
        verbose: bool | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.view = View()
        self._tty = tty
        self._err_tty = err_tty
        self._verbose = verbose
        self._waiter: Waiter | None = None
        #: Seconds a wait lasts before its line is written (``-v`` off a terminal).
        self.progress_delay = 1.0

    # ---- streams ------------------------------------------------------------------------

    @property
    def stdout(self) -> IO[str]:
        # Looked up on each use: click's test runner swaps sys.stdout per invocation.
        return sys.stdout

    @property
    def stderr(self) -> IO[str]:
        return sys.stderr

    @property
    def tty(self) -> bool:
        """True when stdout is a terminal (rich tables); False when piped."""
        return _isatty(self.stdout) if self._tty is None else self._tty

    @property
    def err_tty(self) -> bool:
        """True when stderr is a terminal (spinners)."""
        return _isatty(self.stderr) if self._err_tty is None else self._err_tty

    @property
    def verbose(self) -> bool:
        """``-v``: progress lines are written even when stderr is not a terminal."""
        if self._verbose is not None:
            return self._verbose
        ctx = click.get_current_context(silent=True)
        app = ctx.find_root().obj if ctx is not None else None
        return bool(getattr(app, "verbose", 0))

    @property
    def shows_progress(self) -> bool:
        """Whether progress goes to stderr: on a terminal, or with ``-v``."""
        return self.err_tty or self.verbose

    @property
    def color(self) -> bool:
        """Colour is used on a terminal unless ``NO_COLOR`` is set (to anything)."""
        return self.tty and "NO_COLOR" not in os.environ

    def console(self, *, stderr: bool = False, width: int | None = None) -> Any:
        from rich.console import Console

        return Console(
            file=self.stderr if stderr else self.stdout,
            force_terminal=True,
            no_color="NO_COLOR" in os.environ,
            highlight=False,
            soft_wrap=False,
            width=width,
        )

    # ---- results ------------------------------------------------------------------------

    def result(self, document: Any, human: Callable[[], None]) -> None:
        """Print ``document`` as JSON with ``--json``, else call ``human`` to render it."""
        if self.json_mode:
            self.json(document)
        else:
            human()

    def json(self, document: Any) -> None:
        """Write ``document`` (builtins and msgspec Structs) as indented JSON on stdout."""
        import msgspec

        encoded = msgspec.json.format(msgspec.json.encode(document), indent=2)
        self.stdout.write(encoded.decode() + "\n")
        self.stdout.flush()

    def json_line(self, line: str) -> None:
        """One JSON object of a stream (JSON Lines), already encoded on one line."""
        self.stdout.write(line + "\n")
        self.stdout.flush()

    def echo(self, text: str = "", *, style: str | None = None) -> None:
        """A line of human output on stdout (never in ``--json`` mode)."""
        if self.json_mode:
            return
        if style and self.color:
            self.console().print(text, style=style, markup=False)
        else:
            click.echo(text, file=self.stdout)

    def event(self, line: str, *, json_lines: bool) -> None:
        """A stream's event in human form: a result on stdout; with JSON Lines on stdout,
        progress on stderr (``shows_progress``)."""
        if not json_lines and not self.json_mode:
            click.echo(line, file=self.stdout)
        elif self.shows_progress:
            click.echo(line, file=self.stderr)

    def table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        *,
        title: str | None = None,
        styles: Sequence[str | None] | None = None,
        caption: str | None = None,
        ids: Sequence[str] | None = None,
        empty: str | None = None,
    ) -> None:
        """A table: rich on a terminal (fitted, paged when long), plain aligned columns when
        piped; ``ids`` (default: the first column) with ``-q``; ``empty`` instead of a bare
        header when there are no rows."""
        if self.json_mode:
            return
        view = self.view
        if view.quiet:
            for key in ids if ids is not None else [row[0] for row in rows]:
                click.echo(key, file=self.stdout)
            return
        if not rows and empty is not None:
            click.echo(empty, file=self.stdout)
            return
        keep = self._chosen(columns)
        if not self.tty:
            picked = [columns[i] for i in keep]
            if title:
                click.echo(title, file=self.stdout)
            click.echo(_plain_table(picked, [[r[i] for i in keep] for r in rows]), file=self.stdout)
            if caption:
                click.echo(caption, file=self.stdout)
            return
        rendered, hidden = self._render(columns, rows, keep, title, styles, caption)
        height = self.console().size.height
        if view.pager and view.options and rendered.count("\n") >= height - 1:
            click.echo_via_pager(rendered, color=self.color)
        else:
            self.stdout.write(rendered)
            self.stdout.flush()
        if hidden:
            self.info(self.hidden_note(columns, hidden))

    def _chosen(self, columns: Sequence[Column]) -> list[int]:
        """The columns ``--columns`` names, in its order (all when not given)."""
        if self.view.columns is None:
            return list(range(len(columns)))
        where = {c.key: i for i, c in enumerate(columns)}
        return [where[name] for name in self.view.columns if name in where]

    def _render(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        keep: list[int],
        title: str | None,
        styles: Sequence[str | None] | None,
        caption: str | None,
    ) -> tuple[str, list[int]]:
        table, hidden = self.fitted_table(columns, rows, keep, title, styles, caption)
        width = self.console().width
        if self.view.wide or self.view.columns is not None:
            # Asked for: every column at its own width, wider than the terminal if need be.
            sizes = _sizes(
                [columns[i] for i in keep], [[r[i] for i in keep] for r in rows], _cell_len
            )
            width = max(width, sum(sizes) + _GAP * (len(sizes) - 1))
        console = self.console(width=width)
        with console.capture() as captured:
            console.print(table)
        return captured.get(), hidden

    def hidden_note(self, columns: Sequence[Column], hidden: Sequence[int]) -> str:
        """One line, within the terminal's width, naming the columns left out."""
        count = f"{len(hidden)} column{'s' if len(hidden) > 1 else ''} hidden"
        how = "-o wide shows all" if self.view.options else "widen the terminal or pipe"
        names = [columns[i].key for i in hidden]
        width = self.console().width
        for shown in range(len(names), 0, -1):
            listed = ",".join(names[:shown]) + ("" if shown == len(names) else ",…")
            line = f"note: {count}: {listed} ({how})"
            if len(line) <= width:
                return line
        return f"note: {count} ({how})"

    def rich_table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        *,
        title: str | None = None,
        styles: Sequence[str | None] | None = None,
        caption: str | None = None,
    ) -> Any:
        """The rich ``Table`` for a terminal, fitted to its width (styles dropped when colour
        is off); a caption line says how many columns were left out."""
        table, hidden = self.fitted_table(
            columns, rows, self._chosen(columns), title, styles, caption
        )
        if hidden:
            note = self.hidden_note(columns, hidden).removeprefix("note: ")
            table.caption = f"{caption}\n{note}" if caption else note
        return table

    def fitted_table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        keep: list[int],
        title: str | None,
        styles: Sequence[str | None] | None,
        caption: str | None,
    ) -> tuple[Any, list[int]]:
        """The rich table of ``keep``'s columns that fit (all with ``-o wide`` or
        ``--columns``) and the indexes left out."""
        from rich import box
        from rich.table import Table

        hidden: list[int] = []
        if not self.view.wide and self.view.columns is None:
            keep, hidden = _fit(columns, rows, self.console().width, keep)
        table = Table(
            title=title,
            caption=caption,
            box=box.SIMPLE_HEAD,
            title_justify="left",
            caption_justify="left",
            show_edge=False,
            pad_edge=False,
            padding=(0, 1),
            collapse_padding=True,
        )
        for i in keep:
            table.add_column(columns[i].header, justify=columns[i].align, no_wrap=True)
        for n, row in enumerate(rows):
            style = styles[n] if styles and self.color else None
            table.add_row(*(row[i] for i in keep), style=style)
        return table, hidden

    def fields(self, pairs: Sequence[tuple[str, str]], *, title: str | None = None) -> None:
        """A detail view: ``label  value`` lines."""
        if self.json_mode:
            return
        if title:
            self.echo(title, style="bold")
        width = max((len(name) for name, _ in pairs), default=0)
        for name, value in pairs:
            click.echo(f"  {name.ljust(width)}  {value}", file=self.stdout)

    # ---- stderr -------------------------------------------------------------------------

    def info(self, text: str) -> None:
        """A note on stderr (shown in ``--json`` mode too: stdout stays pure JSON)."""
        click.echo(text, file=self.stderr)

    def warn(self, text: str) -> None:
        """A warning on stderr."""
        click.echo(f"warning: {text}", file=self.stderr)

    def progress(self, text: str) -> None:
        """A progress line on stderr, only on a terminal or with ``-v``."""
        if self.shows_progress:
            click.echo(text, file=self.stderr)

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[Waiter]:
        """Show what a block waits for: a spinner with elapsed time on a terminal.

        When stderr is not a terminal, nothing unless ``-v``: then one
        ``clore: <message> …`` line if the block lasts over a second (and one per later
        ``update``). Nested blocks reuse the running display with their own message,
        restored when they end.
        """
        if self._waiter is not None:
            outer = self._waiter
            previous = outer.message
            outer.update(message)
            try:
                yield outer
            finally:
                outer.message = previous
                if self.err_tty:  # a spinner shows the outer message again; a line log does not
                    outer._update(previous)
            return
        if self.err_tty:
            display = self._spinner(message)
        elif self.verbose:
            display = self._line(message)
        else:
            display = self._silent(message)
        with display as waiter:
            self._waiter = waiter
            try:
                yield waiter
            finally:
                self._waiter = None

    @contextlib.contextmanager
    def _silent(self, message: str) -> Iterator[Waiter]:
        yield Waiter(message, lambda text: None)

    @contextlib.contextmanager
    def _line(self, message: str) -> Iterator[Waiter]:
        printed = threading.Event()
        waiter = Waiter(message, lambda text: None)

        def announce() -> None:
            printed.set()
            click.echo(f"clore: {waiter.message} …", file=self.stderr)

        def update(text: str) -> None:
            if printed.is_set():
                click.echo(f"clore: {text} …", file=self.stderr)

        waiter._update = update
        if self.progress_delay <= 0:
            announce()
            yield waiter
            return
        timer = threading.Timer(self.progress_delay, announce)
        timer.daemon = True
        timer.start()
        try:
            yield waiter
        finally:
            timer.cancel()

    @contextlib.contextmanager
    def _spinner(self, message: str) -> Iterator[Waiter]:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console(stderr=True),
            transient=True,
        )
        with progress:
            task = progress.add_task(message, total=None)
            yield Waiter(message, lambda text: progress.update(task, description=text))


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        from clore.cli._context import AppContext

        ctx.ensure_object(AppContext).json = True


_JSON_HELP = "Print one JSON document on stdout (schema in docs/cli.md)."


@overload
def json_option(fn: Callable[..., Any]) -> Callable[..., Any]: ...


@overload
def json_option(*, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...


def json_option(fn: Callable[..., Any] | None = None, *, help: str = _JSON_HELP) -> Any:
    """Give a command ``--json`` (the same as the global ``clore --json``): ``@json_option``,
    or ``@json_option(help=...)`` for a command whose document is not the usual one."""
    option = click.option(
        "--json", "json_flag", is_flag=True, expose_value=False, callback=_set_json, help=help
    )
    return option if fn is None else option(fn)


def json_lines_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` of a stream: each event as one JSON object per line on stdout."""
    return json_option(
        help="Print each event as one JSON object per line (JSON Lines, event schema v1)."
    )(fn)


@dataclass
class _ViewOptions:
    """What the listing options were given, before they are checked together."""

    columns: str | None = None
    output: str | None = None
    quiet: bool = False
    no_pager: bool = False


_VIEW_KEY = "clore.cli._output.view"


def listing_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--columns a,b,c``, ``-o table|wide|json``, ``-q`` and ``--no-pager`` for a listing
    whose columns are ``names`` (checked before the command runs: exit 2 naming the known
    ones)."""

    def store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
        def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
            given = ctx.meta.setdefault(_VIEW_KEY, _ViewOptions())
            setattr(given, attr, value)

        return callback

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            _apply_view(click.get_current_context(), names)
            return fn(*args, **kwargs)

        options = [
            click.option(
                "--no-pager",
                is_flag=True,
                expose_value=False,
                callback=store("no_pager"),
                help="Do not page a long listing on a terminal.",
            ),
            click.option(
                "-q",
                "--quiet",
                is_flag=True,
                expose_value=False,
                callback=store("quiet"),
                help="Print only the ids, one per line.",
            ),
            click.option(
                "-o",
                "--output",
                type=click.Choice(["table", "wide", "json"]),
                expose_value=False,
                callback=store("output"),
                help="wide: every column, whatever the terminal's width; json: as --json.",
            ),
            click.option(
                "--columns",
                metavar="A,B,...",
                expose_value=False,
                callback=store("columns"),
                help=f"Show these columns, in this order: {', '.join(names)}.",
            ),
        ]
        for option in options:
            command = option(command)
        return command

    return decorate


def _apply_view(ctx: click.Context, names: Sequence[str]) -> None:
    """Check the listing options together and set ``AppContext.out.view``."""
    from clore.cli._context import AppContext

    given = ctx.meta.get(_VIEW_KEY) or _ViewOptions()
    app = ctx.ensure_object(AppContext)
    if given.output == "json":
        app.json = True
    columns: tuple[str, ...] | None = None
    if given.columns is not None:
        columns = tuple(word.strip().lower() for word in given.columns.split(",") if word.strip())
        unknown = [word for word in columns if word not in names]
        if unknown or not columns:
            what = f"unknown column {unknown[0]!r}" if unknown else "no column named"
            raise click.UsageError(f"--columns: {what}; known: {', '.join(names)}", ctx)
        if given.output == "wide":
            raise click.UsageError("give --columns or -o wide, not both", ctx)
    if given.quiet and app.json:
        raise click.UsageError("-q prints ids, --json a document: give one", ctx)
    app.out.view = View(
        columns=columns,
        wide=given.output == "wide",
        quiet=given.quiet,
        pager=not given.no_pager,
        options=True,
    )


def elapsed(started: float) -> str:
    """The time since ``started`` (a ``time.monotonic`` reading): ``12 s``, ``3 min``."""
    from clore.cli._format import duration

    return duration(time.monotonic() - started)
