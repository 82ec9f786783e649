"""Malformed command lines, each run as a real ``python -m clore`` process.

Every case must fail the way docs/cli.md says: no traceback, the documented exit code,
nothing on stdout, exactly one line on stderr (``clore: error: ...``, any hint on that same
line), and nothing sent: each case's base URL points at its own path on a local recorder
(``http://127.0.0.1:PORT/c<n>/v1``) that notes every request, and no case may create the
embedded sandbox's database.

The cases run once per module, a few processes at a time (the machine is shared); each
parametrized test then checks its own case's outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# The run takes about 45 s on a loaded 2-core machine; the timeout leaves room for more load.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: Processes at a time: enough to keep the run short, few enough for a shared 2-core box.
WORKERS = 3
#: Seconds one invocation may take; a malformed one fails long before.
CASE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Case:
    """One invocation: argv after ``clore``, the exit code docs/cli.md documents for it."""

    args: tuple[str, ...]
    code: int = 2
    stdin: str = ""
    env: tuple[tuple[str, str], ...] = ()
    unset: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        shown = " ".join(a if a.isprintable() and a.isascii() and a else repr(a) for a in self.args)
        extra = " ".join(f"{k}={v!r}" for k, v in self.env)
        stdin = f" <<< {self.stdin!r}" if self.stdin else ""
        text = f"{extra} clore {shown}{stdin}".strip()
        return text if len(text) <= 90 else text[:87] + "..."


@dataclass
class Outcome:
    """What one process did."""

    code: int | None
    stdout: str
    stderr: str
    sent: list[str] = field(default_factory=list)
    sandbox_db: bool = False


# ---- the table ------------------------------------------------------------------------------


CASES: list[Any] = []


def case(*args: str, code: int = 2, **kwargs: Any) -> None:
    """Add one case."""
    made = Case(tuple(args), code, **kwargs)
    CASES.append(pytest.param(made, id=made.label))


def cases(values: list[str], *template: str) -> None:
    """One case per value, put where ``template`` says ``{}``."""
    for value in values:
        case(*[value if word == "{}" else word.replace("{}", value) for word in template])


# Ids: non-ASCII digits (Arabic-Indic, fullwidth, superscript), signs, fractions, other
# bases, separators, and numbers past the API's 64-bit ids.
BAD_IDS = ["abc", "", "1.5", "١٢", "１２", "²", "1_2", "+12", "12abc", "0x1f", "1e3"]
BAD_IDS += ["99999999999999999999999", "nan", "-1", "1\n2"]
SOME_IDS = ["abc", "١٢", "１２", "²", "99999999999999999999999"]
cases(BAD_IDS, "order", "{}")
for template in [
    ("open", "{}"),
    ("ssh", "{}"),
    ("cancel", "{}"),
    ("server", "{}"),
    ("spot", "price", "{}", "0.0001"),
    ("spot", "keep", "{}", "--max-bid", "0.001"),
    ("spot", "bid", "{}", "--price", "0.0001", "--yes", "--dry-run"),
    ("copy", "{}:/root", ".", "--print"),
]:
    cases(SOME_IDS, *template)
case("cancel", "1", "١٢")
case("copy", ".", "１２:/root", "--print")
cases(["abc", "١٢", "²"], "rent", "{}", "--yes", "--dry-run")
cases(["abc", "１２"], "monitor", "--order", "{}")
cases(["abc", "99999999999999999999999"], "guard", "--order", "{}", "--once")

# Numbers: not finite, or not spelt in ASCII.
BAD_FLOATS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "abc", "", "١", "１", "1_0", "0x10"]
cases(BAD_FLOATS, "market", "--max-age", "{}")
cases([*BAD_FLOATS, "-1", "0"], "sandbox", "serve", "--port", "0", "--time-scale", "{}")
cases(["nan", "inf", "١", "-1"], "sandbox", "serve", "--port", "0", "--market-activity", "{}")
case("market", "--max-age", "-1")
for value in ["nan", "inf", "abc", "-1", "١"]:
    case("market", env=(("CLORE_MARKET_TTL", value),))
for template, bad in [
    (("orders", "--watch", "--interval", "{}"), "nan"),
    (("rent", "1", "--yes", "--wait", "--timeout", "{}"), "inf"),
    (("monitor", "--hook-timeout", "{}"), "١"),
    (("guard", "--all", "--once", "--interval", "{}"), "1e999"),
    (("watch", "--max-price", "1", "--interval", "{}"), "nan"),
]:
    cases(["abc", bad], *template)
cases(["abc", "nan"], "monitor", "--spend-threshold", "{}")

# Whole numbers: not in ASCII digits, or past 64 bits.
BAD_INTS = ["abc", "", "1.5", "١", "１", "²", "1_0", "99999999999999999999999", "nan", "0x10"]
SOME_INTS = ["abc", "1.5", "١", "１", "99999999999999999999999"]
cases(BAD_INTS, "market", "--limit", "{}")
cases(BAD_INTS, "sandbox", "serve", "--port", "0", "--rng-seed", "{}")
cases([*SOME_INTS, "70000", "-1"], "sandbox", "serve", "--port", "{}")
cases([*SOME_INTS, "0", "100001"], "sandbox", "fault", "wallets", "db_error", "--count", "{}")
cases([*SOME_INTS, "0"], "orders", "--watch", "--count", "{}")
cases([*SOME_INTS, "0"], "host", "set", "gpu-box", "--mrl", "{}")
case("orders", "--count", "2")
case("market", "--limit", "-1")
cases(
    ["abc", "0", "11", "١"], "rent", "--cheapest", "gpu=4090", "--yes", "--dry-run", "--tries", "{}"
)
cases(["abc", "１"], "watch", "--max-price", "1", "--count", "{}")
cases(["abc", "١"], "monitor", "--webhook-retries", "{}")

# Durations: non-ASCII digits, too long for any clock, signs, unknown units.
BIG_DAYS, BIG_SECONDS = "99999999999999999999999d", "9" * 400 + "s"
BAD_DURATIONS = ["abc", "", "nan", "inf", "1e999", BIG_DAYS, BIG_SECONDS, "١٢m", "１h", "-5m"]
BAD_DURATIONS += ["5x", "m"]
cases(BAD_DURATIONS, "sandbox", "advance", "{}")
cases(["nan", BIG_DAYS, BIG_SECONDS, "١٢m", "１h"], "--sandbox", "sandbox", "advance", "{}")
for template, bad in [
    (("monitor", "--for", "{}"), "١٢m"),
    (("monitor", "--expiring-within", "{}"), BIG_DAYS),
    (("monitor", "--runway-below", "{}"), "１h"),
    (("guard", "--all", "--once", "--max-time", "{}"), BIG_SECONDS),
    (("guard", "--all", "--once", "--runway-below", "{}"), "١٢m"),
    (("watch", "--max-price", "1", "--for", "{}"), BIG_DAYS),
    (("rent", "1", "--yes", "--dry-run", "--max-time", "{}"), "１h"),
    (("spot", "keep", "1", "--max-bid", "0.001", "--max-time", "{}"), "١٢m"),
]:
    cases(["abc", bad], *template)
case("guard", "--all", "--once", "--max-time", "0")
case("rent", "1", "--yes", "--dry-run", "--max-time", "0s")

# Times: out-of-range clock times, non-finite or far unix times, dates a clock cannot
# hold, non-ASCII digits.
BAD_UNTILS = ["25:99", "24:00", "12:60", "nan", "-inf", "0001-01-01T00:00", "abc"]
BAD_UNTILS += ["2024-13-01T00:00", "inf", "1e999", "9" * 30, "١٢:٠٠", "１２:００", ""]
cases(BAD_UNTILS, "watch", "--max-price", "1", "--until", "{}")
cases(["25:99", "inf"], "monitor", "--until", "{}")
cases(["abc", "١٢:٠٠"], "guard", "--all", "--until", "{}")
cases(["0001-01-01T00:00", "9" * 30], "spot", "keep", "1", "--max-bid", "0.001", "--until", "{}")
case("watch", "--max-price", "1", "--until", "23:00", "--for", "1h")

# Amounts: words, non-finite numbers, non-ASCII digits, unknown currencies and periods.
BAD_AMOUNTS = ["abc", "", "nan", "inf", "1e999", "9" * 400, "0", "١", "１btc", "1xyz"]
BAD_AMOUNTS += ["1btc/x", "1/h/h"]
SOME_AMOUNTS = ["abc", "nan", "1e999", "١", "1xyz"]
cases(BAD_AMOUNTS, "spot", "price", "1", "{}")
cases(SOME_AMOUNTS, "spot", "bid", "1", "--yes", "--dry-run", "--price", "{}")
cases(SOME_AMOUNTS, "host", "set", "gpu-box", "--price", "{}")
cases(SOME_AMOUNTS, "host", "set", "gpu-box", "--spot-price", "{}")
for template in [
    ("watch", "--max-price", "{}"),
    ("watch", "--max-price", "1", "--budget", "{}"),
    ("rent", "1", "--yes", "--dry-run", "--max-spend", "{}"),
    ("rent", "1", "--yes", "--dry-run", "--spot", "--bid", "{}"),
    ("spot", "keep", "1", "--max-bid", "{}"),
    ("spot", "keep", "1", "--max-bid", "0.001", "--step", "{}"),
    ("guard", "--all", "--once", "--max-spend", "{}"),
]:
    cases(["abc", "1e999", "١"], *template)

# Filter words, sort keys, currencies.
BAD_FILTERS = ["gpus>=two", "nosuch=1", "price<nan", "price<inf", "gpus>=١", "id=１２", "=", ">"]
BAD_FILTERS += ["gpu", "price<1xyz", "reliability>=nan%", "mrl>=١h", "spot=maybe"]
cases(BAD_FILTERS, "market", "{}")
cases(["price<1e999", "cuda>=１２"], "market", "{}")
cases(["gpus>=two", "id=１２", "gpu"], "rent", "--cheapest", "{}", "--yes", "--dry-run")
cases(["gpus>=two", "id=１２", "gpu"], "watch", "{}", "--max-price", "1")
cases(
    ["gpus>=two", "id=１２", "gpu"],
    "spot",
    "keep",
    "1",
    "--max-bid",
    "0.001",
    "--recover",
    "--match",
    "{}",
)
cases(["nosuch", "-", "price,,nosuch", ","], "market", "--sort", "{}")
cases(["nosuch", ","], "watch", "--max-price", "1", "--sort", "{}")
cases(["xyz", "", "١", "bitcoin2"], "market", "--currency", "{}")
for template in [
    ("server", "1", "--currency", "{}"),
    ("rent", "1", "--yes", "--dry-run", "--currency", "{}"),
    ("watch", "--max-price", "1", "--currency", "{}"),
    ("spot", "keep", "1", "--max-bid", "0.001", "--currency", "{}"),
]:
    cases(["xyz", "١"], *template)

# What runs in the container, checked before anything is sent (``rent --dry-run``).
BAD_PORTS = ["22:bogus", "abc", "99999:tcp", "０:tcp", "١٢:tcp", "22:tcp,8888:http,8889:http"]
BAD_PORTS += ["22", "22:tcp:x"]
cases(BAD_PORTS, "rent", "1", "--yes", "--dry-run", "--ports", "{}")
cases(["NOEQ", "=x", " =x"], "rent", "1", "--yes", "--dry-run", "--env", "{}")
cases(
    ["has space", "x" * 33, "pässwörd", "a-b"],
    "rent",
    "1",
    "--yes",
    "--dry-run",
    "--ssh-password",
    "{}",
)
case("rent", "1", "--yes", "--dry-run", "--jupyter-token", "x" * 33)
case("rent", "1", "--yes", "--dry-run", "--ssh-key", "/nonexistent/key.pub")
case("rent", "1", "--yes", "--dry-run", "--ssh-key", "/etc/hostname")
case("rent", "1", "--yes", "--dry-run", "--guard")
case("rent", "1", "--yes", "--dry-run", "--spot")
case("rent", "--yes", "--dry-run")
case("spot", "bid", "1", "--yes", "--dry-run")
case("spot", "bid", "1", "--price", "0.0001", "--yes", "--lock-price")
case("spot", "keep", "1")
case("cancel")
case("cancel", "1", "--issue", "x" * 2049)
case("copy", "a", "b")
case("copy", "1:/a", "2:/b")
case("copy", "1:/a", ".", "--tool", "bogus")
case("ssh-config", "--path", "/")
case("watch")
cases(["../../escape", "a/b"], "watch", "--max-price", "1", "--state", "{}")
case("guard", "--once")
case("guard", "--register", "--max-time", "1h")
case("guard", "--all", "--until", "12:00", "--for", "1h")
cases(["notaurl", "ftp://127.0.0.1/x"], "monitor", "--webhook", "{}")

# Hosting, setup and the sandbox.
case("host", "set", "gpu-box")
case("host", "set", "gpu-box", "--price", "1", "--price", "1btc")
case("config", "use", "nosuch")
case("config", "use", "")
cases(["nosuch", "", " padded", "a\x1bb"], "--profile", "{}", "wallets")
case("wallets", env=(("CLORE_PROFILE", "nosuch"),), unset=("CLORE_API_KEY",))
BAD_KEYS = ["", "two words", "KEY\x00X", "KEY\x01X", "KEY\x1b[31mX", "KEY\x7fX", "KEY\u200bX"]
BAD_KEYS += ["ключ", "KEY\u0085X"]
for value in BAD_KEYS:
    case("config", "set-key", stdin=value + "\n")
for value in ["", " padded", "a\x1bb"]:
    case("config", "set-key", "--profile", value, stdin="KEY\n")
case("sandbox", "serve", "--port", "0", "--seed", "/nonexistent/seed.json")
case("sandbox", "serve", "--port", "0", "--log-level", "bogus")
case("sandbox", "fault", "create_order")
case("sandbox", "fault")
case("sandbox", "fault", "nosuch", "db_error")
case("sandbox", "fault", "create_order", "gremlins")
case("--sandbox", "sandbox", "fault", "nosuch", "db_error")

# Usage: unknown names, missing commands and arguments, in every group.
for args in [
    (),
    ("--json",),
    ("nosuch",),
    ("--nosuch",),
    ("market", "--nosuch"),
    ("spot",),
    ("spot", "nosuch"),
    ("host",),
    ("host", "nosuch"),
    ("config",),
    ("config", "nosuch"),
    ("sandbox",),
    ("sandbox", "nosuch"),
    ("--json", "spot"),
    ("order",),
    ("spot", "price", "1"),
    ("ssh",),
    ("open",),
    ("copy", "1:/root"),
    ("server",),
    ("host", "config"),
    ("sandbox", "advance"),
]:
    case(*args)

# Authentication: without an API key, exit 3 before anything is sent.
for args in [
    ("wallets",),
    ("fees",),
    ("spend",),
    ("orders",),
    ("order", "1"),
    ("cancel", "1"),
    ("host", "list"),
    ("spot", "price", "1", "0.0001"),
]:
    case(*args, code=3, unset=("CLORE_API_KEY",))


# ---- running them ---------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Notes every request's path and answers as the API does for a bad key (code 3)."""

    seen: list[str]
    lock: threading.Lock

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        with self.lock:
            self.seen.append(self.path)
        body = json.dumps({"code": 3, "error": "recorder"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records the path of every request sent to it."""
    seen: list[str] = []
    handler = type("Handler", (_Recorder,), {"seen": seen, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _environment(root: Path, base_url: str, item: Case) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    env.pop("NO_COLOR", None)
    for name in ("config", "cache", "data", "home"):
        (root / name).mkdir(parents=True)
    env.update(
        CLORE_CONFIG_DIR=str(root / "config"),
        CLORE_CACHE_DIR=str(root / "cache"),
        CLORE_DATA_DIR=str(root / "data"),
        HOME=str(root / "home"),
        CLORE_BASE_URL=base_url,
        CLORE_API_KEY="malformed-test-key",
    )
    env.update(dict(item.env))
    for name in item.unset:
        env.pop(name, None)
    return env


def _run(item: Case, root: Path, base_url: str) -> Outcome:
    env = _environment(root, base_url, item)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "clore", *item.args],
            input=item.stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            timeout=CASE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, str(exc.stdout or ""), f"timed out after {CASE_TIMEOUT} s")
    return Outcome(
        done.returncode,
        done.stdout,
        done.stderr,
        sandbox_db=(root / "data" / "sandbox.db").exists(),
    )


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest,
    recorder: tuple[str, list[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Mapping[Case, Outcome]:
    """Run every selected case once, ``WORKERS`` processes at a time."""
    selected = [
        item.callspec.params["item"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    ]
    cases = list(dict.fromkeys(selected))
    base, seen = recorder
    root = tmp_path_factory.mktemp("malformed")
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [
            pool.submit(_run, item, root / str(n), f"{base}/c{n}/v1")
            for n, item in enumerate(cases)
        ]
        results = [future.result() for future in futures]
    for n, result in enumerate(results):
        result.sent = [path for path in seen if path.startswith(f"/c{n}/")]
    return dict(zip(cases, results, strict=True))


@pytest.mark.parametrize("item", CASES)
def test_malformed_invocation_fails_as_documented(
    item: Case, outcomes: Mapping[Case, Outcome]
) -> None:
    """One stderr line, the documented exit code, no traceback, nothing printed or sent."""
    done = outcomes[item]
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert (item.code, "") == (done.code, done.stdout), done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("clore: error: "), done.stderr
    assert "unexpected error" not in lines[0]
    assert (done.sent, done.sandbox_db) == ([], False)


def test_table_is_large_and_distinct() -> None:
    """The table holds a few hundred distinct invocations."""
    distinct = {param.values[0] for param in CASES}
    assert len(distinct) == len(CASES)
    assert len(CASES) >= 300
