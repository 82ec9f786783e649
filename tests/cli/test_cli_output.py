"""Output rules: plain text when piped, rich only on a terminal, NO_COLOR, JSON on stdout."""

from __future__ import annotations

import io
import json
import sys

import pytest

from clore.cli._output import Column, Output, shorten_gpu

COLUMNS = [Column("ID", "right"), Column("GPU")]
ROWS = [["7", "RTX 4090"], ["1234", "A100"]]


def _capture(monkeypatch: pytest.MonkeyPatch) -> tuple[io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return out, err


def test_piped_tables_are_plain_aligned_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a terminal a table is plain columns: right-aligned numbers, no box drawing."""
    out, _ = _capture(monkeypatch)
    Output(tty=False).table(COLUMNS, ROWS)
    assert out.getvalue() == "  ID  GPU\n   7  RTX 4090\n1234  A100\n"


def test_terminal_tables_use_rich_with_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the table is drawn by rich, and row styles produce colour codes."""
    out, _ = _capture(monkeypatch)
    Output(tty=True).table(COLUMNS, ROWS, styles=["green", None])
    text = out.getvalue()
    assert "─" in text
    assert "\x1b[" in text


def test_no_color_keeps_the_table_but_drops_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR removes colour codes from terminal output."""
    monkeypatch.setenv("NO_COLOR", "1")
    out, _ = _capture(monkeypatch)
    Output(tty=True).table(COLUMNS, ROWS, styles=["green", None])
    text = out.getvalue()
    assert "RTX 4090" in text
    assert "\x1b[3" not in text  # no foreground colour


def test_json_mode_prints_one_document_and_no_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """In --json mode only the document reaches stdout; notes go to stderr."""
    out, err = _capture(monkeypatch)
    printer = Output(json_mode=True, tty=False)
    printer.table(COLUMNS, ROWS)
    printer.echo("human text")
    printer.info("a note")
    printer.result({"a": [1, 2]}, lambda: printer.echo("never"))
    assert json.loads(out.getvalue()) == {"a": [1, 2]}
    assert err.getvalue() == "a note\n"


def test_waiting_off_a_terminal_is_silent_when_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wait shorter than a second prints nothing when stderr is not a terminal."""
    _, err = _capture(monkeypatch)
    with Output(err_tty=False).waiting("something quick"):
        pass
    assert err.getvalue() == ""


def test_gpu_names_are_shortened_for_tables() -> None:
    """Vendor prefixes are dropped in tables."""
    assert shorten_gpu("NVIDIA GeForce RTX 4090") == "RTX 4090"
    assert shorten_gpu("NVIDIA A100-SXM4-80GB") == "A100-SXM4-80GB"


def test_nested_waits_reuse_one_display_and_restore_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An inner wait shows its own message inside the outer one, then gives it back."""
    _capture(monkeypatch)
    printer = Output(err_tty=False)
    with printer.waiting("outer") as outer:
        with printer.waiting("inner") as inner:
            assert inner is outer and outer.message == "inner"
        assert outer.message == "outer"


def test_every_sdk_call_says_what_it_waits_for() -> None:
    """Calls through AppContext.api() run inside a labelled wait (pacing may block)."""
    import contextlib
    from collections.abc import Iterator

    from clore.cli._context import AppContext

    seen: list[str] = []

    class Recorder(Output):
        @contextlib.contextmanager
        def waiting(self, message: str) -> Iterator[object]:  # type: ignore[override]
            seen.append(message)
            yield None

    class Client:
        def get_order(self, order_id: int) -> str:
            return f"order {order_id}"

        def my_orders(self, include_completed: bool = False) -> list[int]:
            return []

    app = AppContext(client_instance=Client())  # type: ignore[arg-type]
    app._out = Recorder()
    api = app.api()
    assert api.get_order(7) == "order 7"  # type: ignore[comparison-overlap]
    assert api.my_orders(include_completed=True) == []
    assert seen == ["looking up order 7", "fetching your orders"]
