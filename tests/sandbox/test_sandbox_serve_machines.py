"""`clore sandbox serve` and the orders' machines: loopback only unless exposed on purpose."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from clore.cli import cli

TOKEN = "serve-machines-token-7e21c0a9"


def _serve(*args: str) -> tuple[int, str]:
    # A directory as --db stops the server before it listens: nothing opens to the network.
    result = CliRunner().invoke(
        cli, ["sandbox", "serve", "--port", "0", *args], env={"CLORE_SANDBOX_TOKEN": TOKEN}
    )
    return result.exit_code, result.stderr


def test_machines_stay_on_loopback_off_loopback_unless_exposed(tmp_path: Path) -> None:
    """--host 0.0.0.0 with a token warns about the API and control plane only: the
    machines stay on loopback, so nothing is said of them."""
    code, err = _serve("--host", "0.0.0.0", "--db", str(tmp_path))
    assert code == 2 and "WARNING" in err
    assert "SSH" not in err and "--expose-machines-publicly" not in err


def test_exposing_the_machines_says_what_others_reach(tmp_path: Path) -> None:
    """--expose-machines-publicly off loopback adds a WARNING: anyone who can connect may
    try to log in to every order, and reaches its forwarded ports."""
    code, err = _serve("--host", "0.0.0.0", "--expose-machines-publicly", "--db", str(tmp_path))
    warnings = [line for line in err.splitlines() if line.startswith("WARNING: ")]
    machines = [line for line in warnings if "SSH server" in line]
    assert code == 2 and len(machines) == 1
    assert "0.0.0.0" in machines[0] and "log in" in machines[0] and TOKEN not in err


def test_exposing_on_loopback_says_nothing(tmp_path: Path) -> None:
    """--expose-machines-publicly on 127.0.0.1 exposes nothing, and warns of nothing."""
    code, err = _serve("--expose-machines-publicly", "--db", str(tmp_path))
    assert code == 2 and "WARNING" not in err
