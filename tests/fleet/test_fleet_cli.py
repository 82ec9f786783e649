"""``clore --pacing local|URL``: choosing the fleet's Redis or this machine's file."""

from __future__ import annotations

import subprocess
import sys

from fleet_support import Machine, free_port

KEY = "fleet-cli-key-0123456789abcdef"


def _clore(machine: Machine, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clore", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=machine.env(CLORE_API_KEY=KEY, **env),
    )


def test_pacing_through_an_unreachable_redis_is_exit_2_naming_it_without_secrets(
    tmp_path: object,
) -> None:
    """--pacing URL whose Redis is down: exit 2, one line with the URL minus credentials."""
    port = free_port()
    done = _clore(Machine(tmp_path, "m"), "--pacing", f"redis://ops:pw-123@127.0.0.1:{port}/0",
                  "--base-url", f"http://127.0.0.1:{free_port()}/v1", "wallets")  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("clore: error:")]
    assert len(errors) == 1
    assert f"fleet store redis://127.0.0.1:{port}/0 unreachable" in errors[0]
    assert "nothing was sent" in errors[0]
    assert "pw-123" not in done.stderr and "ops" not in done.stderr


def test_pacing_that_is_not_a_redis_url_is_a_usage_error(tmp_path: object) -> None:
    """--pacing http://... is refused before anything runs (exit 2)."""
    done = _clore(Machine(tmp_path, "m"), "--pacing", "http://127.0.0.1:6379", "wallets")
    assert done.returncode == 2
    assert "Invalid value for '--pacing'" in done.stderr
    assert "not a Redis URL" in done.stderr


def test_pacing_local_ignores_the_fleet_url(tmp_path: object) -> None:
    """--pacing local paces on this machine's file even with CLORE_PACING_URL set: the
    request goes (and here meets no server: exit 1, not the fleet's error)."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    base = f"http://127.0.0.1:{free_port()}/v1"
    machine = Machine(tmp_path, "m")
    done = _clore(
        machine, "--pacing", "local", "--base-url", base, "wallets", CLORE_PACING_URL=dead
    )
    assert done.returncode == 1
    assert "Connect" in done.stderr
    assert "fleet store" not in done.stderr
