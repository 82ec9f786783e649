"""Real ``clore`` processes given a mistyped API key, a bad base URL or a hostile config file:
the key never reaches stdout or stderr, and each failure is one line with its exit code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from _stub.stub_server import serve  # noqa: E402

CLORE = str(Path(sys.executable).with_name("clore"))
LEFT = "Zq7xLEFTHALF9k"
RIGHT = "RIGHTHALF3pW8vQ"
CORE = LEFT + RIGHT


def _clore(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    for name in ("CLORE_CONFIG_DIR", "CLORE_CACHE_DIR", "CLORE_DATA_DIR"):
        env[name] = os.environ[name]
    if key is not None:
        env["CLORE_API_KEY"] = key
    return subprocess.run(
        [CLORE, *args], capture_output=True, text=True, env=env, timeout=60, errors="replace"
    )


def _closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _assert_one_line(done: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("clore: error: ") and text in lines[0], lines[0]
    assert done.stdout == ""


def _assert_no_key(done: subprocess.CompletedProcess[str]) -> None:
    for stream in (done.stdout, done.stderr):
        assert LEFT not in stream and RIGHT not in stream


@pytest.mark.parametrize(
    ("char", "kind"),
    [("\n", "control"), ("\r", "control"), ("\x01", "control"), ("\x1b", "control"),
     ("é", "non-ASCII"), ("€", "non-ASCII"), ("\u200b", "non-ASCII")],
    ids=["LF", "CR", "SOH", "ESC", "latin-1", "non-latin-1", "zero-width"],
)  # fmt: skip
def test_a_key_with_a_bad_character_exits_2_without_echoing_it(char: str, kind: str) -> None:
    """CLORE_API_KEY with a control or non-ASCII character inside: exit 2, one line naming
    the variable and the kind of character, no part of the key, nothing sent."""
    with serve(interval=0.0) as (url, stats):
        done = _clore("--base-url", url, "wallets", key=LEFT + char + RIGHT)
        verbose = _clore("-vv", "--base-url", url, "wallets", key=LEFT + char + RIGHT)
    _assert_one_line(done, 2, f"CLORE_API_KEY: the key holds a {kind} character")
    _assert_no_key(done)
    _assert_no_key(verbose)
    assert char not in done.stderr.strip()
    assert stats.requests == []


def test_a_key_with_a_trailing_newline_is_trimmed_and_never_printed() -> None:
    """CLORE_API_KEY=$'KEY\\n' works (the key trimmed) and -vv logging never shows it."""
    with serve(interval=0.0) as (url, stats):
        done = _clore("-vv", "--base-url", url, "wallets", "--json", key=f" {CORE}\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["wallets"]
    assert "wallets -> HTTP 200" in done.stderr
    _assert_no_key(done)
    assert [seen for _, seen, _ in stats.requests] == [CORE]


@pytest.mark.slow
def test_a_trailing_newline_key_against_a_closed_port_never_leaks() -> None:
    """`CLORE_API_KEY=$'KEY\\n' clore --base-url http://127.0.0.1:<closed>/v1 wallets`:
    exit 1, one line, no key (the SDK's retries back off for real: a few seconds)."""
    done = _clore("--base-url", _closed_url(), "wallets", key=CORE + "\n")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    # A "waiting: ..." progress line may precede the error while the retries back off.
    errors = [line for line in done.stderr.splitlines() if line.startswith("clore: error: ")]
    assert len(errors) == 1 and "wallets: ConnectError" in errors[0]
    _assert_no_key(done)
    verbose = _clore("-vv", "--base-url", _closed_url(), "wallets", key=CORE + "\n")
    assert verbose.returncode == 1
    _assert_no_key(verbose)


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://127.0.0.1:99999/v1", "ftp://127.0.0.1/v1", "127.0.0.1:8765"]
)
def test_a_bad_base_url_exits_2_in_one_line(url: str) -> None:
    """--base-url that is not http(s)://host[:port]: exit 2 naming it, no traceback."""
    done = _clore("--base-url", url, "wallets", key=CORE)
    _assert_one_line(done, 2, f"invalid base_url {url!r}")
    _assert_no_key(done)


def test_a_deeply_nested_config_file_exits_2_in_one_line() -> None:
    """A config.toml nested past the TOML parser's depth: exit 2, "nested too deeply"."""
    path = Path(os.environ["CLORE_CONFIG_DIR"]) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("active = " + "[" * 5000 + "]" * 5000 + "\n")
    _assert_one_line(_clore("wallets"), 2, "nested too deeply")


def test_a_bad_base_url_for_the_control_plane_exits_2_in_one_line() -> None:
    """`clore --base-url 'http://[::1' sandbox reset` (httpx used directly, not the SDK):
    exit 2, one line, not "unexpected error"."""
    done = _clore("--base-url", "http://[::1", "sandbox", "reset")
    _assert_one_line(done, 2, "invalid base_url")
    assert "unexpected error" not in done.stderr
