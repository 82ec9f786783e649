"""The output rules of docs/cli.md (*Output rules*), walked over every command that makes
sense on the embedded sandbox: human durations, the currency's digits, results on stdout
and no progress there (nor on a stderr that is not a terminal), one JSON document or JSON
Lines.

``clore --sandbox ...`` runs through click's runner, each command in a fresh invocation,
on the data, config and cache directories the suite isolates per test.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from clore.cli import cli
from clore.cli._format import amount, duration
from clore.cli._output import Output
from clore.workflows import workflows_dir

# ---- the rules, checked on text -----------------------------------------------------------

SIGNIFICANT = {"BTC": 4, "CLORE": 4, "USD": 3}
_SECONDS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?) ?s\b")
_MINUTES = re.compile(r"(?<![\w.])(\d+) min\b")
_HOURS = re.compile(r"(?<![\w./])(\d+) h\b")
_FRACTION = re.compile(r"(?<![\w.])\d+\.\d+ ?(?:s|min|h|d|days?|hours?|minutes?)\b")
_OLD_MINUTES = re.compile(r"(?<![\w.])\d+ m\b")
_PADDED = re.compile(r"(?<![\w.:])0\d ?(?:s|m|min|h)\b")
_AMOUNT = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?(?:e-?\d+)?) (BTC|CLORE|USD)\b")
_LABEL = re.compile(r"\b(BTC|CLORE|USD)\b")
_SPINNER = re.compile(r"[\r⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]")


def digits_ok(text: str, currency: str) -> bool:
    """``text`` has ``currency``'s significant digits (at most 8 decimals for BTC), no
    exponent; a whole number as long as the integer part needs."""
    if text in ("0", "—"):
        return True
    if "e" in text.lower():
        return False
    whole, _, decimals = text.lstrip("-").partition(".")
    wanted = SIGNIFICANT[currency]
    figures = (whole + decimals).lstrip("0")
    if len(whole.lstrip("0")) >= wanted:
        return decimals == ""
    if currency == "BTC" and len(decimals) == 8:
        return 0 < len(figures) <= wanted
    return len(figures) == wanted


def _table_cells(text: str) -> Iterator[tuple[str, str]]:
    """(currency, cell) for every cell of a plain table under a header naming a currency."""
    lines = text.splitlines()
    for n, line in enumerate(lines):
        headers = re.split(r"\s{2,}", line.strip())
        if len(headers) < 3 or not any(_LABEL.search(h) for h in headers):
            continue
        if any(re.search(r"\d", h) for h in headers):
            continue  # a row, not a header
        for row in lines[n + 1 :]:
            cells = re.split(r"\s{2,}", row.strip())
            if len(cells) != len(headers):
                break
            for header, cell in zip(headers, cells, strict=True):
                found = _LABEL.search(header)
                if found and re.fullmatch(r"-?[\d.]+", cell):
                    yield found.group(1), cell


def violations(text: str) -> list[str]:
    """What in ``text`` breaks the duration and amount rules."""
    found: list[str] = []
    found += [f"seconds past 90: {m.group(0)!r}" for m in _SECONDS.finditer(text)
              if float(m.group(1)) > 90]  # fmt: skip
    found += [f"minutes past 59: {m.group(0)!r}" for m in _MINUTES.finditer(text)
              if int(m.group(1)) >= 60]  # fmt: skip
    found += [f"hours past 23: {m.group(0)!r}" for m in _HOURS.finditer(text)
              if int(m.group(1)) >= 24]  # fmt: skip
    found += [f"fractional duration: {m.group(0)!r}" for m in _FRACTION.finditer(text)]
    found += [f"old duration form: {m.group(0)!r}" for m in _OLD_MINUTES.finditer(text)]
    found += [f"zero-padded duration: {m.group(0)!r}" for m in _PADDED.finditer(text)]
    found += [f"digits: {m.group(0)!r}" for m in _AMOUNT.finditer(text)
              if not digits_ok(m.group(1), m.group(2))]  # fmt: skip
    found += [f"digits in a {cur} column: {cell!r}" for cur, cell in _table_cells(text)
              if not digits_ok(cell, cur)]  # fmt: skip
    return found


def progress_on(stream: str) -> list[str]:
    """Progress lines (waits, spinners) in a stream that must hold none."""
    return [
        line for line in stream.splitlines() if line.rstrip().endswith("…") or _SPINNER.search(line)
    ]


# ---- the rules themselves -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (45, "45 s"), (90, "90 s"), (91, "2 min"), (720, "12 min"),
     (3599, "1 h"), (7333, "2 h 2 min"), (12000, "3 h 20 min"), (86399, "1 d"),
     (165600, "1 d 22 h"), (22580 * 3600, "940 d 20 h"), (None, "—")],
)  # fmt: skip
def test_durations_are_human(seconds: float | None, text: str) -> None:
    """One form for every duration: seconds up to 90, then minutes, hours, days."""
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [(0.000058, "bitcoin", "0.00005800"), (0.000058 / 24, "bitcoin", "0.00000242"),
     (0.00012346, "bitcoin", "0.0001235"), (0.99812345, "bitcoin", "0.9981"),
     (9.99996, "bitcoin", "10.00"), (12.3456, "CLORE-Blockchain", "12.35"),
     (1234567.8, "CLORE-Blockchain", "1234568"), (0.0975, "USD-Blockchain", "0.0975"),
     (0.48, "USD-Blockchain", "0.480"), (146.2, "USD-Blockchain", "146"),
     (0.0, "bitcoin", "0"), (None, "bitcoin", "—")],
)  # fmt: skip
def test_amounts_have_the_currency_s_significant_digits(
    value: float | None, currency: str, text: str
) -> None:
    """BTC 4 (at most 8 decimals), CLORE 4, USD 3; never an exponent."""
    assert amount(value, currency) == text


def test_the_checker_catches_the_forms_the_issue_names() -> None:
    """The forms a new user hit are what the walk below looks for."""
    bad = [
        "order 12 expires in 2090 min",
        "bitcoin wallet runs out in 22580.0 h at the burn rate",
        "allowed in 7333 s",
        "lowering allowed in 3 m 05 s",
        "time left 3 d 04 h",
        "price 0.000058 BTC/day",
        "balance 0.041912345 BTC",
        "0.00011000 BTC",
    ]
    good = "runs out in 1 d 22 h; 0.00005800 BTC/day; 200000 CLORE; 0.0975 USD/h; 90 s"
    assert ([bool(violations(text)) for text in bad], violations(good)) == (
        [True] * len(bad),
        [],
    )


def test_the_checker_reads_table_columns_by_their_currency() -> None:
    """A number under a header naming a currency gets that currency's digits."""
    table = "   ID  BTC/day  USD/h  CC\n    7  0.00005  0.142  RU\n   81  0.00005800  0.1420  DE\n"
    assert violations(table) == [
        "digits in a BTC column: '0.00005'",
        "digits in a USD column: '0.1420'",
    ]


def test_progress_off_a_terminal_needs_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wait writes nothing when stderr is not a terminal, and its line with -v."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    quiet, verbose = Output(err_tty=False, verbose=False), Output(err_tty=False, verbose=True)
    for printer in (quiet, verbose):
        printer.progress_delay = 0.0
        with printer.waiting("waiting for order 12 to be ready") as waiter:
            waiter.update("waiting for order 12: provisioning")
    assert err.getvalue().splitlines() == [
        "clore: waiting for order 12 to be ready …",
        "clore: waiting for order 12: provisioning …",
    ]


# ---- every command on the embedded sandbox ------------------------------------------------


class Sandboxed:
    """``clore --sandbox ARGS`` through click's runner; each call a fresh invocation."""

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--sandbox", *args])

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, (args, result.output)
        return json.loads(result.stdout)


@pytest.fixture
def sandboxed() -> Iterator[Sandboxed]:
    """The embedded sandbox in the test's data dir; its orders cancelled and its database
    removed at the end (so the background machine host exits)."""
    run = Sandboxed()
    yield run
    for order in run.json("orders")["orders"]:
        run("cancel", str(order["id"]))
    Path(os.environ["CLORE_DATA_DIR"], "sandbox.db").unlink(missing_ok=True)


@pytest.fixture
def world(sandboxed: Sandboxed) -> dict[str, str]:
    """A running on-demand order and a running spot bid, provisioned."""
    order = sandboxed.json("rent", "--cheapest", "gpu=4090", "gpus=1", "--yes")["order"]
    server = sandboxed.json("market", "gpu=3090", "gpus=1", "-n", "1")["servers"][0]
    bid = server["price"]["spot"]["bitcoin"] * 2
    spot = sandboxed.json("spot", "bid", str(server["id"]), "--price", f"{bid:.8f}", "--yes")
    assert sandboxed("sandbox", "advance", "5m").exit_code == 0
    return {
        "order": str(order["id"]),
        "server": str(order["si"]),
        "spot": str(spot["order"]["id"]),
        "spot_server": str(server["id"]),
        "raise": f"{bid * 1.2:.8f}",
        "lower": f"{bid * 1.2 * 0.95:.8f}",
        "price": f"{order['price']:.8f}btc",
    }


#: One-shot commands: a result, one JSON document with --json.
ONE_SHOT = [
    "market gpu=4090 --limit 5",
    "market --all --limit 3",
    "market gpu=4090 --currency clore --limit 3",
    "market gpu=4090 --currency usd --limit 3",
    "market gpu=h100",
    "market gpu=4090 -o wide --limit 3",
    "server {server}",
    "gpus",
    "gpus --currency clore",
    "orders",
    "orders --all",
    "order {order}",
    "spot price {spot} {raise}",
    "wallets",
    "fees",
    "spend",
    "hosts bad",
    "config show",
    "ssh {order} --print",
    "ssh-config",
    "open {order} --no-browser",
    "rent {server} --dry-run",
    "market record --count 1 --interval 1m",
    "market stats --model 4090",
    "sandbox advance 1h",
]
#: Streams: one line per event on stdout, JSON Lines with --json.
STREAMS = [
    "orders --watch --count 2 --interval 1",
    "monitor --for 2s --interval 1",
    "guard --once --all --max-time 30d --runway-below 10000d",
]
#: Run last, in human form only (their JSON would rent again; cancel's is checked twice).
LAST = [
    "rent --cheapest gpu=3080 gpus=1 --yes",
    "spot bid {spot_server} --price {raise} --yes",
    "cancel {order}",
    "cancel {order}",
]
#: Checked once: their JSON is their own tests'.
HUMAN_ONLY = {"market record --count 1 --interval 1m", "sandbox advance 1h", *LAST}
#: Streams whose events' messages come from the loops (checked below), JSON Lines here.
WATCH = "watch gpu=4090 gpus=1 --max-price {price} --for 2s --interval 1 --any-quality"
KEEP = "spot keep {spot} --max-bid {raise} --for 2s --interval 1"
#: ... and the kind of their last event (None: any).
STREAMS_JSON_ONLY = {WATCH: "done", KEEP: None}


def _args(template: str, ids: dict[str, str]) -> list[str]:
    return [word.format(**ids) for word in template.split()]


def _check(result: Result, args: list[str]) -> list[str]:
    if result.exit_code != 0:
        return [f"exit {result.exit_code}: {result.output}"]
    problems = violations(result.stdout) + violations(result.stderr)
    problems += [f"progress on stdout: {line!r}" for line in progress_on(result.stdout)]
    problems += [f"progress on a piped stderr: {line!r}" for line in progress_on(result.stderr)]
    problems += [f"a line for stderr on stdout: {line!r}"
                 for line in result.stdout.splitlines()
                 if line.startswith(("clore: ", "note: ", "warning: "))]  # fmt: skip
    return problems


@pytest.mark.slow
def test_every_command_follows_the_output_rules(
    sandboxed: Sandboxed, world: dict[str, str]
) -> None:
    """Human durations, the currency's digits, no progress on stdout or on a piped
    stderr; --json is one document (one-shot) or JSON Lines of schema v1 (streams)."""
    problems: dict[str, list[str]] = {}
    # The JSON-only streams before LAST, which rents again and cancels the world's order.
    for template in ONE_SHOT + STREAMS + list(STREAMS_JSON_ONLY) + LAST:
        args = _args(template, world)
        found = problems.setdefault(template, [])  # cancel is walked twice
        if template not in STREAMS_JSON_ONLY:
            found += _check(sandboxed(*args), args)
        if template in HUMAN_ONLY:
            continue
        result = sandboxed(*args, "--json")
        if template in STREAMS or template in STREAMS_JSON_ONLY:
            events = [json.loads(line) for line in result.stdout.splitlines()]
            kinds = [e["kind"] for e in events]
            last = STREAMS_JSON_ONLY.get(template)
            if (
                result.exit_code != 0
                or not events
                or {e["v"] for e in events} != {1}
                or (last is not None and kinds[-1:] != [last])
            ):
                found.append(
                    f"--json is not JSON Lines of events (exit {result.exit_code}): {kinds}"
                )
        else:
            document = json.loads(result.stdout)
            if not isinstance(document, dict):
                found.append(f"--json is not one document: {result.stdout!r}")
    assert {t: p for t, p in problems.items() if p} == {}


@pytest.mark.slow
def test_stream_events_are_results_on_stdout(sandboxed: Sandboxed, world: dict[str, str]) -> None:
    """monitor, watch, guard, spot keep and a piped orders --watch print their events on
    stdout; the line they start with goes to stderr."""
    monitor = sandboxed("monitor", "--for", "1s", "--interval", "1")
    watch = sandboxed(*_args(WATCH, world))
    guard = sandboxed("guard", "--all", "--once", "--max-time", "30d", "--runway-below", "10000d")
    keep = sandboxed(*_args(KEEP, world))
    piped = sandboxed("orders", "--watch", "--count", "1", "--interval", "1")
    runs = (monitor, watch, guard, keep, piped)
    spot = world["spot"]
    state = workflows_dir() / f"spot-{spot}.json"
    kinds = [sorted({line.split()[2] for line in r.stdout.splitlines()}) for r in runs]
    assert kinds == [
        ["tracking"],
        ["done", "match"],
        ["low_runway"],
        ["bid_lowered", "lower_wait"],
        ["tracking"],
    ]
    assert [r.stderr.splitlines()[:1] for r in (monitor, watch, keep)] == [
        ["monitoring your orders, a poll every 1 s; Ctrl-C to stop"],
        [f"watching for gpu=4090 gpus=1 at ≤ {amount(float(world['price'][:-3]), 'bitcoin')} "
         "BTC/day (reporting matches), a poll every 1 s; Ctrl-C to stop"],
        [f"keeping order {spot} on server {world['spot_server']}; state: {state}"],
    ]  # fmt: skip


#: Outputs whose text the library writes (the loops' event messages) or that a command
#: formats itself (the hosted servers' listing).
ELSEWHERE = [
    pytest.param("monitor --for 1s --interval 1 --expiring-within 4d", id="monitor-expiring"),
    pytest.param(WATCH, id="watch-match"),
    pytest.param(
        "guard --all --for 1s --interval 120 --max-time 30d --runway-below 10000d",
        id="guard-runway",
    ),
    pytest.param(KEEP, id="spot-keep"),
    pytest.param("host list", id="host-list"),
]


@pytest.mark.slow
@pytest.mark.parametrize("template", ELSEWHERE)
def test_outputs_written_elsewhere_follow_the_rules(
    sandboxed: Sandboxed, world: dict[str, str], template: str
) -> None:
    """The same rules for the texts the CLI prints but does not format."""
    args = _args(template, world)
    assert _check(sandboxed(*args), args) == []
