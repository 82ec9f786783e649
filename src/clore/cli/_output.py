"""Everything the CLI prints: JSON documents, tables, detail views, notes and spinners.

* ``--json``: exactly one JSON document on stdout, nothing else there.
* Tables: rich (colour, box drawing) only when stdout is a terminal; plain, aligned text
  when piped. ``NO_COLOR`` turns colour off in either case.
* Notes, warnings, prompts, progress and spinners go to stderr, never stdout.

rich and msgspec are imported inside the functions that use them (fast ``--help``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

import click

__all__ = ["Column", "Output", "Waiter", "json_option", "shorten_gpu"]


@dataclass(frozen=True)
class Column:
    """A table column: header, alignment and priority.

    On a terminal too narrow for the whole table, columns of the lowest ``priority`` are
    left out first (piped output and ``--json`` always have everything).
    """

    header: str
    align: Literal["left", "right"] = "left"
    priority: int = 9


def _fit(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> tuple[list[int], int]:
    """Indexes of the columns that fit in ``width`` (by priority) and how many were dropped."""
    sizes = [len(c.header) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            sizes[i] = max(sizes[i], len(cell))
    keep = list(range(len(columns)))
    # A rich SIMPLE_HEAD column takes its content, one space of padding on either side and
    # a one-space divider; the table adds an edge of one space on either side.
    while sum(sizes[i] + 3 for i in keep) + 1 > width and len(keep) > 1:
        victim = min(reversed(keep), key=lambda i: columns[i].priority)
        keep.remove(victim)
    return keep, len(columns) - len(keep)


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
    widths = [len(c.header) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if columns[i].align == "right" else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

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
    ) -> None:
        self.json_mode = json_mode
        self._tty = tty
        self._err_tty = err_tty
        self._waiter: Waiter | None = None

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
    def color(self) -> bool:
        """Colour is used on a terminal unless ``NO_COLOR`` is set (to anything)."""
        return self.tty and "NO_COLOR" not in os.environ

    def console(self, *, stderr: bool = False) -> Any:
        from rich.console import Console

        return Console(
            file=self.stderr if stderr else self.stdout,
            force_terminal=True,
            no_color="NO_COLOR" in os.environ,
            highlight=False,
            soft_wrap=False,
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

    def echo(self, text: str = "", *, style: str | None = None) -> None:
        """A line of human output on stdout (never in ``--json`` mode)."""
        if self.json_mode:
            return
        if style and self.color:
            self.console().print(text, style=style, markup=False)
        else:
            click.echo(text, file=self.stdout)

    def table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        *,
        title: str | None = None,
        styles: Sequence[str | None] | None = None,
        caption: str | None = None,
    ) -> None:
        """A table: rich on a terminal, plain aligned columns when piped."""
        if self.json_mode:
            return
        if not self.tty:
            if title:
                click.echo(title, file=self.stdout)
            click.echo(_plain_table(columns, rows), file=self.stdout)
            if caption:
                click.echo(caption, file=self.stdout)
            return
        self.console().print(
            self.rich_table(columns, rows, title=title, styles=styles, caption=caption)
        )

    def rich_table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        *,
        title: str | None = None,
        styles: Sequence[str | None] | None = None,
        caption: str | None = None,
    ) -> Any:
        """The rich ``Table`` for a terminal (styles dropped when colour is off).

        Low-priority columns are left out when the terminal is too narrow, and the caption
        says so, rather than truncating every cell.
        """
        from rich import box
        from rich.table import Table

        keep, dropped = _fit(columns, rows, self.console().width)
        if dropped:
            note = f"{dropped} column(s) hidden: widen the terminal, pipe the output or use --json"
            caption = f"{caption}\n{note}" if caption else note
        table = Table(
            title=title,
            caption=caption,
            box=box.SIMPLE_HEAD,
            title_justify="left",
            caption_justify="left",
            pad_edge=False,
        )
        for i in keep:
            table.add_column(columns[i].header, justify=columns[i].align, no_wrap=True)
        for n, row in enumerate(rows):
            style = styles[n] if styles and self.color else None
            table.add_row(*(row[i] for i in keep), style=style)
        return table

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

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[Waiter]:
        """Show what a block waits for: a spinner with elapsed time on a terminal.

        When stderr is not a terminal, one ``clore: <message> …`` line is printed if the
        block lasts over a second (and one per later ``update``). Nested blocks reuse the
        running display with their own message, restored when they end.
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
        with self._spinner(message) if self.err_tty else self._line(message) as waiter:
            self._waiter = waiter
            try:
                yield waiter
            finally:
                self._waiter = None

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
        timer = threading.Timer(1.0, announce)
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


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command ``--json`` (the same as the global ``clore --json``)."""

    def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            from clore.cli._context import AppContext

            ctx.ensure_object(AppContext).json = True

    return click.option(
        "--json",
        "json_flag",
        is_flag=True,
        expose_value=False,
        callback=set_json,
        help="Print one JSON document on stdout (schema in docs/cli.md).",
    )(fn)


def elapsed(started: float) -> str:
    """Seconds since ``started`` (a ``time.monotonic`` reading) as ``12.3 s``."""
    return f"{time.monotonic() - started:.1f} s"
