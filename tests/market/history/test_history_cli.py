"""``clore market record | stats | history`` and ``clore sandbox history`` through click's
runner, against the in-process sandbox on its ManualClock (recording waits advance
simulated time)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result

import clore.cli.history_cmd
from clore.cli import cli
from clore.cli._context import AppContext
from clore.market.history import SERIES_CSV_COLUMNS, default_path

if TYPE_CHECKING:
    from clore import Clore
    from clore._clock import ManualClock
    from clore.sandbox import Sandbox


@pytest.fixture
def run(sandbox: Sandbox, sandbox_clock: ManualClock, clore_client: Clore) -> Any:
    """``run("market", "stats")`` -> click Result, as the sandbox's demo user."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        app = AppContext(
            client_instance=clore_client, clock_instance=sandbox_clock, sandbox_instance=sandbox
        )
        return CliRunner().invoke(cli, list(args), obj=app, env=env)

    return invoke


def doc(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_record_takes_count_snapshots_into_the_sandbox_history(run: Any) -> None:
    """--count 2 --interval 5m: two snapshots in the sandbox's file, a line each on stderr."""
    result = run("market", "record", "--count", "2", "--interval", "5m", "--json")
    summary = doc(result)
    lines = [line for line in result.stderr.splitlines() if " listed, " in line]
    assert (summary["snapshots"], summary["db"], len(lines)) == (
        2,
        str(default_path("sandbox")),
        2,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "30s"], "at least 60"),
        (["--interval", "soon"], "--interval: bad duration"),
        (["--for", "1h", "--count", "2"], "exclude each other"),
    ],
)
def test_record_refuses_bad_options(run: Any, args: list[str], message: str) -> None:
    """Exit 2 with one line saying what is wrong; nothing is fetched."""
    result = run("market", "record", *args)
    assert (result.exit_code, message in result.stderr, len(result.stderr.splitlines())) == (
        2,
        True,
        1,
    )


def test_stats_show_the_recorded_market(run: Any, clore_client: Clore) -> None:
    """stats --model 4090 counts what the listing had, per exact model."""
    run("market", "record", "--count", "1")
    listed = sum(1 for s in clore_client.marketplace() if s.specs.gpu.endswith("RTX 4090"))
    stats = doc(run("market", "stats", "--model", "4090", "--json"))
    assert (stats["schema"], [m["model"] for m in stats["models"]], stats["total"]["listed"]) == (
        "clore.market.history.stats/1",
        ["RTX 4090"],
        listed,
    )


def test_stats_table_names_the_rule(run: Any) -> None:
    """The human table says how percentiles are counted."""
    run("market", "record", "--count", "1")
    result = run("market", "stats", "gpus>=4")
    assert (result.exit_code, "one value per host" in result.stdout) == (0, True)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["stats"], 4, "no snapshot recorded"),
        (["stats", "--at", "yesterday-ish"], 2, "--at: bad time"),
        (["stats", "gpus>>2"], 2, "bad filter"),
        (["stats", "--currency", "eur"], 2, "--currency"),
        (["history", "--since", "7d"], 4, "no snapshot recorded"),
    ],
)
def test_bad_requests_are_one_line_errors(
    run: Any, args: list[str], code: int, message: str
) -> None:
    """Nothing recorded is exit 4; bad input is exit 2; never a traceback."""
    result = run("market", *args)
    assert (result.exit_code, message in result.stderr, "Traceback" in result.output) == (
        code,
        True,
        False,
    )


def test_show_prints_a_table_when_piped_and_json_or_csv_on_request(run: Any) -> None:
    """Not a terminal: a plain table; --json the series document; --csv its columns."""
    run("market", "record", "--count", "3")
    table = run("market", "history", "--model", "4090", "--since", "1h")
    series = doc(run("market", "history", "--model", "4090", "--since", "1h", "--json"))
    csv_out = run("market", "history", "--model", "4090", "--since", "1h", "--csv")
    assert (
        table.stdout.splitlines()[0].split()[:3],
        series["schema"],
        csv_out.stdout.splitlines()[0].split(","),
        "\x1b" in table.stdout,
    ) == (
        ["time", "listed", "avail"],
        "clore.market.history.series/1",
        list(SERIES_CSV_COLUMNS),
        False,
    )


def test_show_chart_honours_no_color_at_80_columns(run: Any) -> None:
    """--chart with NO_COLOR: no escape codes, nothing wider than 80 columns."""
    pytest.importorskip("plotext")
    run("market", "record", "--count", "3")
    result = run(
        "market", "history", "--model", "4090", "--since", "1h", "--chart", env={"NO_COLOR": "1"}
    )
    lines = result.stdout.splitlines()
    assert (result.exit_code, "\x1b" in result.stdout, max(len(line) for line in lines)) == (
        0,
        False,
        80,
    )


def test_show_info_says_where_and_how_big(run: Any) -> None:
    """--info: the database path, its size and span."""
    run("market", "record", "--count", "2")
    info = doc(run("market", "history", "--info", "--json"))
    assert (info["path"], info["snapshots"], info["size_bytes"] > 0) == (
        str(default_path("sandbox")),
        2,
        True,
    )


def test_show_parquet_writes_the_raw_rows(run: Any, tmp_path: Path) -> None:
    """--parquet PATH writes the rows file and its snapshots beside it."""
    pytest.importorskip("pyarrow")
    run("market", "record", "--count", "2")
    target = tmp_path / "export.parquet"
    written = doc(run("market", "history", "--since", "1h", "--parquet", str(target), "--json"))
    assert (
        target.exists(),
        (tmp_path / "export.snapshots.parquet").exists(),
        written["snapshots"],
    ) == (
        True,
        True,
        2,
    )


def test_generate_makes_a_past_that_stats_and_show_read(run: Any) -> None:
    """A simulated day in half-hour steps, then charts and stats over it; generating over
    it again needs --replace."""
    made = doc(run("sandbox", "history", "--days", "1", "--interval", "30m", "--json"))
    series = doc(run("market", "history", "--model", "4090", "--since", "1d", "--json"))
    again = run("sandbox", "history", "--days", "1", "--interval", "30m")
    replaced = run("sandbox", "history", "--days", "1", "--interval", "30m", "--replace")
    assert (
        made["snapshots"],
        len(series["points"]) > 10,
        again.exit_code,
        "--replace" in again.stderr,
        replaced.exit_code,
    ) == (48, True, 2, True, 0)


def test_the_face_imports_no_private_module_of_the_library() -> None:
    """history_cmd uses public names only (clore.cli's own helpers aside)."""
    source = Path(clore.cli.history_cmd.__file__).read_text(encoding="utf-8")
    names = [
        node.module or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    private = [
        n for n in names if re.match(r"clore\.(?!cli\.)(.*\.)?_", n) or n.startswith("clore._")
    ]
    assert private == []
