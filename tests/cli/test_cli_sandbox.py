"""clore sandbox reset | advance | fault on the embedded sandbox, and their guard rails."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click
import pytest
from cli_helpers import Cli
from click.testing import CliRunner

from clore.cli import cli
from clore.cli.sandbox_cmd import parse_seconds


def test_advance_moves_sandbox_time_and_billing(run: Cli) -> None:
    """sandbox advance 1h moves the clock an hour; a running order's spend grows."""
    order = run.rent_cheapest_4090()
    before = run.clock.time()
    doc = run.json("sandbox", "advance", "1h")
    assert doc["advanced"] == 3600.0
    assert run.clock.time() - before == pytest.approx(3600.0)
    assert float(run.client.get_order(order["id"]).spend) >= order["price"] / 24 * 0.99
    text = run("sandbox", "advance", "90").stdout
    assert text.startswith("advanced the sandbox clock by 90 s")


def test_reset_forgets_orders(run: Cli) -> None:
    """sandbox reset returns to the seeded state: no orders."""
    run.rent_cheapest_4090()
    assert run("sandbox", "reset").exit_code == 0
    assert run.client.my_orders(include_completed=True) == []


def test_faults_make_the_next_calls_fail(run: Cli) -> None:
    """A db_error fault on my_orders beyond the SDK's retries surfaces as exit 1."""
    assert run("sandbox", "fault", "my_orders", "db_error", "--count", "10").exit_code == 0
    result = run("orders")
    assert result.exit_code == 1
    assert "code 1" in result.stderr


def test_rate_limit_faults_exit_5(run: Cli) -> None:
    """Still rate-limited after retries is exit 5."""
    run("sandbox", "fault", "wallets", "rate_limit", "--count", "10")
    result = run("wallets")
    assert result.exit_code == 5
    assert "rate-limited" in result.stderr


def test_unknown_fault_is_refused(run: Cli) -> None:
    """The sandbox names the faults it knows."""
    result = run("sandbox", "fault", "my_orders", "gremlins")
    assert result.exit_code == 2
    assert "db_error" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3600", 3600),
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("2d", 172800),
        ("1h30m", 5400),
        ("1w", 604800),
        (".5h", 1800),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    """Durations take s, m, h, d and w suffixes."""
    assert parse_seconds(text) == seconds


def test_bad_duration_is_exit_2(run: Cli) -> None:
    """A malformed duration is a usage error."""
    for text in ("soon", "1y", "1e9", "h", "1hh"):
        result = run("sandbox", "advance", text)
        assert result.exit_code == 2 and "bad duration" in result.stderr, text


def test_control_refuses_the_real_api() -> None:
    """Without --sandbox or a sandbox --base-url, control commands never reach the real API."""
    result = CliRunner().invoke(cli, ["sandbox", "reset"])
    assert result.exit_code == 2
    assert "refusing to send it to the real API" in result.stderr


def test_fault_choices_are_exactly_the_sandbox_faults() -> None:
    """clore sandbox fault accepts (and its help names) exactly the sandbox's faults."""
    from clore.cli.sandbox_faults_cmd import fault
    from clore.sandbox import FAULTS

    (choice,) = [p for p in fault.params if p.name == "fault"]
    assert isinstance(choice.type, click.Choice)
    assert tuple(choice.type.choices) == FAULTS
    shown = CliRunner().invoke(cli, ["sandbox", "fault", "--help"]).stdout
    assert [name for name in FAULTS if f"  {name} " not in shown] == []


def test_unknown_endpoint_is_refused_with_the_known_ones(run: Cli) -> None:
    """A fault on an endpoint the API does not have is exit 2 naming the endpoints."""
    result = run("sandbox", "fault", "create_orders", "db_error")
    assert result.exit_code == 2
    assert result.stderr.startswith("clore: error: unknown endpoint 'create_orders'; one of: ")
    assert "create_order" in result.stderr and len(result.stderr.splitlines()) == 1


def test_every_fault_can_be_injected(run: Cli) -> None:
    """Each fault name is accepted and queued on the sandbox."""
    from clore.sandbox import FAULTS

    for name in FAULTS:
        assert run.json("sandbox", "fault", "/v1/wallets", name) == {
            "endpoint": "wallets", "fault": name, "count": 1, "seconds": None,
        }  # fmt: skip
    assert [f[1] for f in run.sandbox.faults()] == list(FAULTS)


@pytest.fixture
def served_with(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the server with a recorder of the arguments `clore sandbox serve` passes."""
    import clore.sandbox.server

    seen: dict[str, Any] = {}
    monkeypatch.setattr(clore.sandbox.server, "serve", lambda **kw: seen.update(kw))
    return seen


def test_serve_defaults_match_the_issue(served_with: dict[str, Any]) -> None:
    """Defaults: 127.0.0.1:8765, the data dir's database, the snapshot, real time, rate limits."""
    result = CliRunner().invoke(cli, ["sandbox", "serve"])
    assert result.exit_code == 0, result.output
    assert served_with == {
        "host": "127.0.0.1", "port": 8765, "db": None, "seed": "snapshot", "time_scale": 1.0,
        "demo_key": None, "rate_limit": True, "market_activity": 0.0, "rng_seed": 0,
        "log_level": "warning",
    }  # fmt: skip


def test_serve_passes_every_option(served_with: dict[str, Any], tmp_path: Path) -> None:
    """Each documented option reaches clore.sandbox.serve under its own name."""
    seed = tmp_path / "market.json"
    seed.write_text('{"servers": [], "code": 0}')
    args = ["--host", "0.0.0.0", "--port", "9000", "--db", ":memory:", "--seed", str(seed),
            "--time-scale", "60", "--demo-key", "k" * 32, "--no-rate-limit",
            "--market-activity", "0.5", "--rng-seed", "7", "--log-level", "info"]  # fmt: skip
    result = CliRunner().invoke(cli, ["sandbox", "serve", *args])
    assert result.exit_code == 0, result.output
    assert served_with == {
        "host": "0.0.0.0", "port": 9000, "db": ":memory:", "seed": str(seed.resolve()),
        "time_scale": 60.0, "demo_key": "k" * 32, "rate_limit": False, "market_activity": 0.5,
        "rng_seed": 7, "log_level": "info",
    }  # fmt: skip


def test_serve_default_database_is_the_sandbox_mode_file() -> None:
    """serve(db=None) and `clore --sandbox` use one file: data_dir()/sandbox.db."""
    from clore._paths import data_dir
    from clore.cli._context import AppContext
    from clore.sandbox.server import default_db_path

    app = AppContext(sandbox=True)
    try:
        assert default_db_path() == data_dir() / "sandbox.db" == Path(app.embedded_sandbox().db)
    finally:
        app.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "--seed: "), ('{"servers": 3}', "expected a marketplace response")],
)
def test_a_bad_seed_file_is_exit_2(tmp_path: Path, content: str, message: str) -> None:
    """An unreadable seed is a usage error on one line, before anything listens."""
    seed = tmp_path / "seed.json"
    seed.write_text(content)
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--seed", str(seed), "--port", "0"])
    assert result.exit_code == 2
    assert result.stderr.startswith("clore: error: --seed: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_busy_port_is_one_line_and_exit_1() -> None:
    """A port in use says so (and how to pick a free one) instead of a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["sandbox", "serve", "--port", str(port), "--db", ":memory:", "--seed", "none"]
        )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"clore: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(--port 0 picks a free port)"
    )


def test_ctrl_c_stops_the_server_with_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C ends serve without a traceback: exit 130 and where the state is kept."""
    import clore.sandbox.server

    def interrupted(**_kw: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(clore.sandbox.server, "serve", interrupted)
    result = CliRunner().invoke(cli, ["sandbox", "serve"])
    assert result.exit_code == 130
    assert result.stderr.startswith("sandbox stopped (Ctrl-C); state kept in ")
    assert "Traceback" not in result.output
