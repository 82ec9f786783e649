"""Real processes: the entry point, exit codes, stdout/stderr separation and piping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CLORE = str(Path(sys.executable).with_name("clore"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    for name in ("CLORE_CONFIG_DIR", "CLORE_CACHE_DIR", "CLORE_DATA_DIR"):
        env[name] = os.environ[name]
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def clore(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run the installed clore entry point."""
    return subprocess.run(
        [CLORE, *args], capture_output=True, text=True, env=_env(**extra), timeout=60
    )


def test_json_goes_to_stdout_alone_and_parses() -> None:
    """--json: stdout is one JSON document; the summary note is on stderr."""
    done = clore("--sandbox", "market", "gpu=4090", "--limit", "3", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert len(doc["servers"]) == 3


def test_piped_output_is_plain_text() -> None:
    """Piped stdout is a plain table without escape codes or box drawing."""
    done = clore("--sandbox", "market", "--limit", "3")
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout and "─" not in done.stdout
    assert len(done.stdout.splitlines()) == 4
    assert done.stderr.startswith("3 of ")


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--sandbox", "market", "gpus>=two"], 2, "bad filter 'gpus>=two'"),
        (["--sandbox", "market", "--no-such-option"], 2, "No such option"),
        (["--sandbox", "order", "987654"], 4, "order 987654 is not among your orders"),
        (["wallets"], 3, "no API key configured"),
        (["--sandbox", "rent", "1", "--ports", "22:bogus", "--yes"], 2, "--ports"),
        (["definitely-not-a-command"], 2, "no such command"),
        (["--sandbox", "rent", "99999999", "--yes"], 4, "server 99999999 is not on the market"),
        (["--sandbox", "rent", "1", "--yes", "--max-spend", "x"], 2, "--max-spend: bad price"),
        (["--sandbox", "orders", "--watch", "--interval", "0"], 2, "--interval"),
        (["--sandbox", "sandbox", "fault", "wallets", "gremlins"], 2, "'gremlins' is not one of"),
        (["--sandbox", "host", "config", "no-such-host"], 4, "you host no server named"),
        (["--base-url", "http://127.0.0.1:9/v1", "sandbox", "reset"], 1, "cannot reach"),
    ],
)
def test_failures_are_one_stderr_line_and_an_exit_code(
    args: list[str], code: int, text: str
) -> None:
    """Errors: the documented exit code, one line on stderr, nothing on stdout, no traceback."""
    done = clore(*args)
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("clore: error: ") and text in lines[0]
    assert "Traceback" not in done.stderr


def test_state_persists_between_sandbox_invocations() -> None:
    """--sandbox keeps its state: an order rented in one process is seen by the next."""
    rented = clore("--sandbox", "rent", "--cheapest", "gpu=4090", "--yes", "--json")
    assert rented.returncode == 0, rented.stderr
    order_id = json.loads(rented.stdout)["order"]["id"]
    listed = clore("--sandbox", "orders", "--json")
    assert [o["id"] for o in json.loads(listed.stdout)["orders"]] == [order_id]


def test_verbose_logs_requests_without_the_key() -> None:
    """-v logs each request to stderr; the API key never appears."""
    from clore.sandbox import Sandbox

    done = clore("-v", "--sandbox", "wallets", "--json")
    assert done.returncode == 0, done.stderr
    assert "wallets -> HTTP 200" in done.stderr
    assert json.loads(done.stdout)["wallets"]
    with Sandbox(db=Path(os.environ["CLORE_DATA_DIR"]) / "sandbox.db") as state:
        key = state.demo_key
    assert key and key not in done.stderr and key not in done.stdout


def test_set_key_reads_a_piped_key_without_a_prompt() -> None:
    """`echo KEY | clore config set-key`: no prompt, no getpass warning, the key saved."""
    done = subprocess.run(
        [CLORE, "config", "set-key", "--no-check"],
        input="abcdef0123456789abcdef\n",
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("saved key abcd…cdef in profile 'default'")


def test_python_dash_m_clore_exit_codes_match() -> None:
    """python -m clore maps errors the same way."""
    done = subprocess.run(
        [sys.executable, "-m", "clore", "--sandbox", "market", "colour=red"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 2 and "unknown field 'colour'" in done.stderr


@pytest.fixture
def served() -> Iterator[tuple[str, str]]:
    """A sandbox server on a free port: (base URL, demo key)."""
    proc = subprocess.Popen(
        [CLORE, "sandbox", "serve", "--port", "0", "--db", ":memory:", "--no-rate-limit"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        key = proc.stdout.readline().split()[-1]
        yield url, key
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_serve_and_control_a_sandbox_over_http(served: tuple[str, str]) -> None:
    """sandbox serve answers the CLI over HTTP; advance and reset use its control plane."""
    url, key = served
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    market = clore("--base-url", url, "market", "gpu=4090", "--limit", "1", "--json",
                   CLORE_API_KEY=key)  # fmt: skip
    assert market.returncode == 0, market.stderr
    assert json.loads(market.stdout)["servers"]
    advanced = clore("--base-url", url, "sandbox", "advance", "2h", "--json")
    assert advanced.returncode == 0, advanced.stderr
    doc = json.loads(advanced.stdout)
    assert doc["advanced"] == 7200 and doc["now"] > 1e9  # the server's time after the jump
    fault = clore("--base-url", url, "sandbox", "fault", "wallets", "db_error", "--count", "9")
    assert fault.returncode == 0, fault.stderr
    failing = clore("--base-url", url, "wallets", CLORE_API_KEY=key)
    assert failing.returncode == 1 and "code 1" in failing.stderr
    assert clore("--base-url", url, "sandbox", "reset").returncode == 0


def test_sandbox_serve_json_prints_its_banner_as_one_document() -> None:
    """`sandbox serve --json`: the URL, demo key and database as one JSON document."""
    proc = subprocess.Popen(
        [CLORE, "sandbox", "serve", "--port", "0", "--db", ":memory:", "--seed", "none",
         "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("}"):
                break
        doc = json.loads("".join(lines))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert set(doc) == {"base_url", "demo_key", "database", "machines"}
    assert doc["base_url"].startswith("http://127.0.0.1:") and doc["base_url"].endswith("/v1")
    assert doc["database"] == ":memory:" and len(doc["demo_key"]) >= 16
