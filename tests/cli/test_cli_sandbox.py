"""clore sandbox reset | advance | fault on the embedded sandbox, and their guard rails."""

from __future__ import annotations

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
    assert text.startswith("advanced the sandbox clock by 1 m 30 s")


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
    ("text", "seconds"), [("3600", 3600), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)]
)
def test_durations(text: str, seconds: float) -> None:
    """Durations take s, m, h, d and w suffixes."""
    assert parse_seconds(text) == seconds


def test_bad_duration_is_exit_2(run: Cli) -> None:
    """A malformed duration is a usage error."""
    result = run("sandbox", "advance", "soon")
    assert result.exit_code == 2 and "expected a duration" in result.stderr


def test_control_refuses_the_real_api() -> None:
    """Without --sandbox or a sandbox --base-url, control commands never reach api.clore.ai."""
    result = CliRunner().invoke(cli, ["sandbox", "reset"])
    assert result.exit_code == 2
    assert "refusing to send it to the real API" in result.stderr
