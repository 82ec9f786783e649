"""`clore sandbox serve` and the control token: no open control plane off loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sandbox_support import LiveServer

from clore.cli import cli

TOKEN = "serve-test-token-4b1d9e07c3"
CLORE = str(Path(sys.executable).with_name("clore"))


def _serve(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--port", "0", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_serve_refuses_a_host_off_loopback_without_a_token(tmp_path: Path) -> None:
    """--host 0.0.0.0 without a token: exit 2, one line naming the fix, no database made."""
    db = tmp_path / "never.db"
    code, out, err = _serve("--host", "0.0.0.0", "--db", str(db), "--seed", "none")
    assert (code, out, len(err.splitlines())) == (2, "", 1)
    assert err.startswith("clore: error: refusing to serve on 0.0.0.0 without a control token")
    assert "--control-token" in err and "CLORE_SANDBOX_TOKEN" in err
    assert not db.exists()


def test_python_m_serve_refuses_a_host_off_loopback_without_a_token(tmp_path: Path) -> None:
    """python -m clore.sandbox serve --host 0.0.0.0 is the same usage error (exit 2)."""
    env = {k: v for k, v in os.environ.items() if k != "CLORE_SANDBOX_TOKEN"}
    args = [sys.executable, "-m", "clore.sandbox", "serve", "--host", "0.0.0.0", "--port", "0"]
    args += ["--db", str(tmp_path / "never.db"), "--seed", "none"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert "refusing to serve on 0.0.0.0 without a control token" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "never.db").exists()


@pytest.mark.parametrize(
    "bad", ["abc123", "x" * 257, "has a space-0123456789", "nl-0123456789abcdef\nmore"]
)
def test_serve_refuses_a_weak_token_without_echoing_it(bad: str, tmp_path: Path) -> None:
    """A token that is short, long, or not visible ASCII is exit 2, and is never printed."""
    code, out, err = _serve("--control-token", bad, "--db", str(tmp_path / "x.db"))
    assert (code, out, len(err.splitlines())) == (2, "", 1)
    assert err.startswith("clore: error: --control-token: ")
    assert bad.strip() not in err


def test_serve_off_loopback_with_a_token_warns_what_is_exposed(tmp_path: Path) -> None:
    """With a token (from the environment) and --host 0.0.0.0, stderr says loudly what
    others can reach, and never shows the token. (A directory as --db stops the server
    before it listens, so the test opens nothing to the network.)"""
    code, out, err = _serve(
        "--host", "0.0.0.0", "--db", str(tmp_path), env={"CLORE_SANDBOX_TOKEN": TOKEN}
    )
    warning = [line for line in err.splitlines() if line.startswith("WARNING: ")]
    assert code == 2 and err.splitlines()[-1].startswith("clore: error: --db: ")
    assert "0.0.0.0" in warning[0] and "other machines" in warning[0]
    assert any("/_sandbox" in line and "x-sandbox-token" in line for line in warning)
    assert any("/v1" in line for line in warning)
    assert TOKEN not in out + err


def test_serve_on_loopback_with_a_token_does_not_warn(tmp_path: Path) -> None:
    """A token on 127.0.0.1 is quiet: nothing is exposed beyond this machine."""
    code, _, err = _serve("--control-token", TOKEN, "--db", str(tmp_path))
    assert code == 2 and "WARNING" not in err and TOKEN not in err


@pytest.mark.slow
def test_a_served_sandbox_with_a_token_wants_it_over_http(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """Over TCP, /_sandbox needs x-sandbox-token; the CLI's control commands send the
    CLORE_SANDBOX_TOKEN they are given; the token appears in no output or log."""
    server = live_server("--control-token", TOKEN)
    root, base, log = server.root, server.base, server.log
    refused = httpx.get(root + "/_sandbox/info", timeout=10)
    served = httpx.get(root + "/_sandbox/info", headers={"x-sandbox-token": TOKEN}, timeout=10)
    assert (refused.status_code, refused.json()) == (
        401,
        {"code": 3, "error": "control_token_required"},
    )
    assert served.json()["demo_key"] == server.demo_key
    env = {k: v for k, v in os.environ.items() if k != "CLORE_SANDBOX_TOKEN"}
    args = [CLORE, "--base-url", base, "sandbox", "advance", "1h"]
    without = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    with_token = subprocess.run(
        args, capture_output=True, text=True, timeout=60, env={**env, "CLORE_SANDBOX_TOKEN": TOKEN}
    )
    assert (without.returncode, with_token.returncode) == (3, 0), without.stderr
    assert "control_token_required" in without.stderr and "Traceback" not in without.stderr
    for text in (without.stdout, without.stderr, with_token.stdout, with_token.stderr, log()):
        assert TOKEN not in text
