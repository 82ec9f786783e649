"""Listings at 80 and 200 columns: the columns each keeps, ``--columns``, ``-o wide``, ``-q``,
the one-line note about hidden columns, one line for an empty listing, and the pager (a
real terminal: a subprocess on a pseudo-terminal)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Cli
from click.testing import CliRunner, Result

from clore import Clore
from clore.cli import cli
from clore.cli._context import AppContext
from clore.cli._output import Output

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def on_terminal(run: Cli, width: int, *args: str, client: Any = None) -> Result:
    """``clore ARGS`` with stdout a terminal ``width`` columns wide (stderr piped)."""
    app = AppContext(
        client_instance=client or run.client, clock_instance=run.clock, sandbox_instance=run.sandbox
    )
    app._out = Output(tty=True, err_tty=False)
    env = {"COLUMNS": str(width), "LINES": "200", "NO_COLOR": "1"}
    return CliRunner().invoke(cli, list(args), obj=app, env=env)


def screen(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [_ANSI.sub("", line) for line in result.stdout.splitlines()]


def headers(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


class Counting:
    """The client, counting the requests made through it."""

    def __init__(self, client: Clore) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


MARKET_ALL = [
    "ID", "GPU", "VRAM", "BTC/day", "BTC/h", "USD/day", "USD/h", "spot/day", "Reliab.",
    "Rating", "CC", "CUDA", "Threads", "RAM", "Disk", "Net ↓/↑",
]  # fmt: skip


def test_market_at_80_columns_keeps_what_a_renter_picks_by(run: Cli) -> None:
    """At 80 columns: id, GPU, price per day, spot minimum, USD per hour, reliability,
    country, CUDA, rating; nothing wider than 80; one note line naming the rest."""
    result = on_terminal(run, 80, "market", "gpu=4090", "gpus=1", "--limit", "10")
    lines = screen(result)
    kept = headers(lines[0])
    assert kept == [
        "ID", "GPU", "BTC/day", "USD/h", "spot/day", "Reliab.", "Rating", "CC", "CUDA",
    ]  # fmt: skip
    assert max(len(line) for line in lines) <= 80
    (note,) = [line for line in result.stderr.splitlines() if "hidden" in line]
    assert note == "note: 7 columns hidden: vram,price_h,usd,threads,ram,disk,… (-o wide shows all)"


def test_market_at_200_columns_shows_every_column_and_no_note(run: Cli) -> None:
    """A wide terminal has room for all sixteen columns: no note."""
    result = on_terminal(run, 200, "market", "gpu=4090", "--limit", "5")
    assert headers(screen(result)[0]) == MARKET_ALL
    assert "hidden" not in result.stderr


def test_wide_shows_every_column_on_a_narrow_terminal(run: Cli) -> None:
    """-o wide: every column whatever the width (lines wider than the terminal)."""
    result = on_terminal(run, 80, "market", "gpu=4090", "--limit", "5", "-o", "wide")
    lines = screen(result)
    assert (headers(lines[0]), max(len(line) for line in lines) > 80) == (MARKET_ALL, True)
    assert "hidden" not in result.stderr


def test_orders_at_80_columns_keep_gpu_and_ssh(run: Cli) -> None:
    """orders at 80 columns: id, GPU, state, time left and SSH (and what else fits); at
    200 every column."""
    run.rent_cheapest_4090()
    narrow = screen(on_terminal(run, 80, "orders"))
    wide = screen(on_terminal(run, 200, "orders"))
    assert {"ID", "GPU", "State", "Time left", "SSH"} <= set(headers(narrow[0]))
    assert max(len(line) for line in narrow) <= 80
    assert headers(wide[0]) == [
        "ID", "Server", "GPU", "Type", "BTC/day", "BTC/h", "State", "Spend BTC", "Time left",
        "SSH",
    ]  # fmt: skip
    assert "127.0.0.1:" in narrow[2]


def test_columns_picks_and_orders_them_on_a_terminal_and_piped(run: Cli) -> None:
    """--columns id,cc,price: exactly those, in that order, whatever the output."""
    args = ("market", "gpu=4090", "--limit", "3", "--columns", "id,cc,price")
    piped = run(*args)
    terminal = on_terminal(run, 80, *args)
    assert headers(piped.stdout.splitlines()[0]) == ["ID", "CC", "BTC/day"]
    assert headers(screen(terminal)[0]) == ["ID", "CC", "BTC/day"]
    assert len(piped.stdout.splitlines()) == 4


def test_unknown_columns_are_exit_2_before_any_request(run: Cli) -> None:
    """A column name the listing does not have: exit 2 naming the known ones, nothing sent."""
    client = Counting(run.client)
    results = [
        run("market", "--columns", "id,colour", client=client),
        run("orders", "--columns", "", client=client),
        run("orders", "-q", "--json", client=client),
        run("market", "--columns", "id", "-o", "wide", client=client),
    ]
    assert [(r.exit_code, len(r.stderr.splitlines())) for r in results] == [(2, 1)] * 4
    assert client.calls == []
    assert "--columns: unknown column 'colour'; known: id, gpu, vram" in results[0].stderr


def test_quiet_prints_only_the_ids(run: Cli) -> None:
    """-q: the ids of what the listing would show, one per line (vastai's -q)."""
    servers = run.json("market", "gpu=4090", "--limit", "4")["servers"]
    order = run.rent_cheapest_4090()
    models = run.json("gpus", "gpus>=8")["models"]
    assert run("market", "gpu=4090", "--limit", "4", "-q").stdout.split() == [
        str(s["id"]) for s in servers
    ]
    assert run("orders", "-q").stdout == f"{order['id']}\n"
    assert run("gpus", "gpus>=8", "-q").stdout.splitlines() == [m["model"] for m in models]
    assert on_terminal(run, 80, "orders", "-q").stdout == f"{order['id']}\n"


def test_output_json_is_json(run: Cli) -> None:
    """-o json is --json."""
    assert json.loads(run("wallets", "-o", "json").stdout) == run.json("wallets")


def test_empty_listings_are_one_line(run: Cli) -> None:
    """An empty search is one line, not a bare header; `No running orders` names --all."""
    market = run("market", "gpu=h100")
    orders = run("orders")
    assert market.stdout.splitlines() == ["No matching available servers (of 3500 listed; fresh)."]
    assert orders.stdout == "No running orders (--all shows ended ones).\n"
    assert run("orders", "--all").stdout == "No orders.\n"


def test_the_hidden_columns_note_fits_one_line_of_a_narrow_terminal(run: Cli) -> None:
    """At 60 columns the note is still one line within the width."""
    result = on_terminal(run, 60, "market", "--limit", "5")
    notes = [line for line in result.stderr.splitlines() if "hidden" in line]
    assert len(notes) == 1 and len(notes[0]) <= 60
    assert max(len(line) for line in screen(result)) <= 60


# ---- the pager, on a real terminal --------------------------------------------------------

_PAGER = """\
import sys
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write(sys.stdin.read())
"""


def _clore_on_a_terminal(tmp_path: Path, *args: str) -> tuple[str, str | None]:
    """``python -m clore ARGS`` with stdin, stdout and stderr a pseudo-terminal of 24 × 80
    and ``PAGER`` a script keeping what it is given: (what the terminal showed, what the
    pager got or None)."""
    import fcntl
    import pty
    import struct
    import termios

    pager, paged = tmp_path / "pager.py", tmp_path / "paged.txt"
    pager.write_text(_PAGER, encoding="utf-8")
    paged.unlink(missing_ok=True)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, PAGER=f"{sys.executable} {pager} {paged}", TERM="xterm")
    env.update(COLUMNS="80", LINES="24", NO_COLOR="1")
    child = subprocess.Popen(
        [sys.executable, "-m", "clore", *args], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert child.wait(timeout=60) == 0, shown.decode(errors="replace")
    text = _ANSI.sub("", shown.decode(errors="replace"))
    return text, paged.read_text(encoding="utf-8") if paged.exists() else None


@pytest.mark.slow
def test_a_long_listing_on_a_terminal_goes_through_the_pager(tmp_path: Path) -> None:
    """On a terminal a listing longer than the screen is paged; a short one is not, nor
    one with --no-pager."""
    long_text, long_paged = _clore_on_a_terminal(tmp_path, "--sandbox", "market", "--limit", "0")
    short_text, short_paged = _clore_on_a_terminal(tmp_path, "--sandbox", "market", "-n", "3")
    _, unpaged = _clore_on_a_terminal(
        tmp_path, "--sandbox", "market", "--limit", "100", "--no-pager"
    )
    assert long_paged is not None and len(long_paged.splitlines()) > 1000
    assert "1472 of 1472 matching" in long_text and "21468" not in long_text
    assert (short_paged, "21468" in short_text, unpaged) == (None, True, None)


@pytest.mark.slow
def test_a_piped_listing_never_goes_through_the_pager(tmp_path: Path) -> None:
    """stdout a pipe (stdin and stderr too): the whole listing on stdout, no pager."""
    pager, paged = tmp_path / "pager.py", tmp_path / "paged.txt"
    pager.write_text(_PAGER, encoding="utf-8")
    env = dict(os.environ, PAGER=f"{sys.executable} {pager} {paged}", COLUMNS="80", LINES="24")
    done = subprocess.run(
        [sys.executable, "-m", "clore", "--sandbox", "market", "--limit", "0"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert (done.returncode, paged.exists()) == (0, False)
    assert len(done.stdout.splitlines()) == 1473  # the header and every available server
