"""The small frictions of issue 15: set-key checks the key, config show and remove, spot
bid without --lock-price, --bid implying --spot, renting a server you already rent,
sandbox fault --list/--clear/--seconds, the base URL without /v1.

The key checks and the control plane over HTTP run against a real `python -m
clore.sandbox serve` on 127.0.0.1 (one per module).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cli_helpers import Cli
from click.testing import CliRunner, Result

from clore import Clore, config
from clore.cli import cli


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A sandbox server on a free port of 127.0.0.1 (no rate limit, its own directories):
    base URL, demo key."""
    dirs = tmp_path_factory.mktemp("server-dirs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    env.update({f"CLORE_{kind}_DIR": str(dirs / kind) for kind in ("CONFIG", "CACHE", "DATA")})
    args = [sys.executable, "-m", "clore.sandbox", "serve", "--host", "127.0.0.1"]
    args += ["--port", "0", "--db", ":memory:", "--no-rate-limit", "--no-machines"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)  # fmt: skip
    assert proc.stdout is not None
    try:
        url_line, key_line = proc.stdout.readline(), proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", url_line)
        assert match is not None and key_line.startswith("demo key: "), (url_line, key_line)
        yield match.group(1), key_line.split(": ", 1)[1].strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def clore(*args: str, key: str | None = None) -> Result:
    """``clore ARGS`` in-process, the key piped on stdin."""
    return CliRunner().invoke(cli, list(args), input=None if key is None else key + "\n")


# ---- config set-key checks the key ---------------------------------------------------------


def test_set_key_saves_a_key_the_api_accepts(server: tuple[str, str]) -> None:
    """One wallets request with the key; accepted, it is saved and said to be checked."""
    base, key = server
    result = clore("--base-url", base, "config", "set-key", "--profile", "sbx", "--json", key=key)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["checked"], doc["note"], doc["api_key"]) == (True, None, config.mask_key(key))
    assert config.load().profiles["sbx"].api_key == key
    assert key not in result.output
    human = clore("--base-url", base, "config", "set-key", key=key)
    assert human.stdout.rstrip().endswith("; the API accepted it")


def test_a_refused_key_is_not_saved(server: tuple[str, str]) -> None:
    """A key the API refuses (code 3) is exit 3, one line, and nothing is written."""
    base, _ = server
    wrong = "0123456789abcdef0123456789abcdef"
    result = clore("--base-url", base, "config", "set-key", key=wrong)
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "refused the key 0123…cdef" in lines[0] and "not saved" in lines[0]
    assert wrong not in result.output
    assert not config.config_path().exists()
    # --no-check saves it all the same, with no request.
    saved = clore("--base-url", base, "config", "set-key", "--no-check", key=wrong)
    assert saved.exit_code == 0 and saved.stderr == ""
    assert config.load().profiles["default"].api_key == wrong


def test_a_base_url_without_v1_is_told_and_nothing_saved(server: tuple[str, str]) -> None:
    """The server's root instead of its /v1: exit 2 saying the base URL ends in /v1."""
    base, key = server
    root = base.removesuffix("/v1")
    result = clore("--base-url", root, "config", "set-key", key=key)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert f"{root} answered 'invalid endpoint'" in line and "ends in /v1" in line
    assert not config.config_path().exists()


def test_a_check_that_cannot_be_made_saves_with_a_warning() -> None:
    """Nothing listening: the key is saved, unchecked, and the warning says so."""
    result = clore("--base-url", "http://127.0.0.1:9/v1", "config", "set-key", "--json",
                   key="k" * 20)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checked"] is False
    assert (
        result.stderr.startswith("warning: could not check it (") and "unchecked" in result.stderr
    )
    assert config.load().profiles["default"].api_key == "k" * 20


def test_a_malformed_key_is_refused_before_any_request() -> None:
    """A key with a control character is exit 2 naming its position, not checked."""
    result = clore("--base-url", "http://127.0.0.1:9/v1", "config", "set-key", key="abc\x01def")
    assert result.exit_code == 2
    assert "U+0001" in result.stderr and "could not check" not in result.stderr


# ---- config show and remove ----------------------------------------------------------------


def _profiles() -> None:
    for name, key, url in (
        ("default", "a" * 20, None),
        ("sandbox-local", "b" * 8, "http://127.0.0.1:8765/v1"),
    ):
        config.set_profile(name, api_key=key, base_url=url)


def test_show_aligns_the_profiles_and_names_the_active_one() -> None:
    """One column per field, the active profile on its own line and marked with *."""
    _profiles()
    lines = clore("config", "show").stdout.splitlines()
    assert lines[1] == "active       default"
    rows = [line for line in lines if line.startswith("  ")]
    assert rows == [
        "  * default        aaaa…aaaa",
        "    sandbox-local  ****       http://127.0.0.1:8765/v1",
    ]
    assert (
        lines[-1]
        == "in use       key aaaa…aaaa from profile default; base URL https://api.clore.ai/v1"
    )
    assert [line[:13] for line in lines if not line.startswith(" ")] == [
        "config file  ", "active       ", "profiles", "in use       ",
    ]  # fmt: skip


def test_show_under_sandbox_shows_no_base_url() -> None:
    """--sandbox ignores profiles and base URLs: show says so and names none."""
    _profiles()
    result = clore("--sandbox", "--base-url", "http://127.0.0.1:8765/v1", "config", "show")
    in_use = result.stdout.splitlines()[-1]
    assert in_use.startswith("in use       the embedded sandbox (--sandbox)")
    assert "https://" not in in_use and "8765" not in in_use
    doc = json.loads(clore("--sandbox", "config", "show", "--json").stdout)
    assert doc["sandbox"] is True
    assert doc["resolved"] == {"profile": None, "api_key": None, "base_url": None,
                               "source": "sandbox"}  # fmt: skip


def test_remove_deletes_a_profile_and_never_switches_accounts() -> None:
    """remove asks first; removing the active profile makes no other one active."""
    _profiles()
    declined = CliRunner().invoke(cli, ["config", "remove", "default"], input="n\n")
    assert declined.exit_code == 1 and "nothing was removed" in declined.stderr
    assert "default" in config.load().profiles
    result = clore("config", "remove", "default", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == "removed profile 'default'\n"
    assert "was the active profile" in result.stderr and "sandbox-local" in result.stderr
    cfg = config.load()
    assert (sorted(cfg.profiles), cfg.active) == (["sandbox-local"], "default")
    assert "(no such profile yet)" in clore("config", "show").stdout
    missing = clore("config", "remove", "nosuch", "--yes")
    assert missing.exit_code == 2
    assert (
        missing.stderr.strip()
        == "clore: error: no profile named 'nosuch' (profiles: sandbox-local)"
    )
    doc = json.loads(clore("config", "remove", "sandbox-local", "--yes", "--json").stdout)
    assert doc == {"removed": "sandbox-local", "was_active": False, "profiles": []}


# ---- spot bid, rent --bid, renting twice ---------------------------------------------------------


def test_spot_bid_has_no_lock_price() -> None:
    """spot bid --help does not offer --lock-price; rent's does; given, it is unknown."""
    assert "--lock-price" not in clore("spot", "bid", "--help").stdout
    assert "--lock-price" in clore("rent", "--help").stdout
    result = clore("spot", "bid", "1", "--price", "0.0001", "--yes", "--lock-price")
    assert result.exit_code == 2 and "No such option '--lock-price'" in result.stderr


def test_bid_implies_spot_and_refuses_a_price_lock(run: Cli) -> None:
    """rent ID --bid is a spot bid (the dry run's body is a spot order); with --lock-price
    it is exit 2."""
    body = run.json("rent", "1", "--bid", "0.0001", "--dry-run", "--yes")["body"]
    assert (body["type"], body["spotprice"]) == ("spot", 0.0001)
    result = run("rent", "1", "--bid", "0.0001", "--lock-price", "--yes")
    assert result.exit_code == 2 and "not spot bids" in result.stderr


def test_renting_a_server_you_rent_says_so_before_asking(run: Cli, clore_client: Clore) -> None:
    """A live order of yours on the server: a warning naming it, before `Proceed?`."""
    order = run.rent_cheapest_4090()
    server = str(order["si"])
    bid = f"{float(order['price']) * 2:.8f}"
    result = run("spot", "bid", server, "--price", bid, input="n\n")
    assert result.exit_code == 1
    said = result.stderr
    warning = f"warning: you already rent server {server}: order {order['id']} (on-demand)"
    assert warning in said and said.index(warning) < said.index("Proceed?")
    other = next(s for s in clore_client.marketplace() if not s.rented and s.id != order["si"])
    fresh = run("rent", str(other.id), input="n\n")
    assert "you already rent" not in fresh.stderr and "Proceed?" in fresh.stderr


# ---- sandbox fault --list, --clear, --seconds --------------------------------------------


def test_fault_list_and_clear_on_the_embedded_sandbox(run: Cli) -> None:
    """--list shows the queue (the timed fault's seconds too), --clear empties it."""
    assert run("sandbox", "fault", "--list").stdout == "No faults queued.\n"
    seconds = run.json("sandbox", "fault", "create_order", "late_commit", "--seconds", "30")
    assert seconds["seconds"] == 30.0
    run("sandbox", "fault", "wallets", "db_error", "--count", "3")
    assert run.sandbox.faults() == [
        ("create_order", "late_commit@30.0", 1),
        ("wallets", "db_error", 3),
    ]
    assert run.json("sandbox", "fault", "--list")["faults"] == [
        {"endpoint": "create_order", "fault": "late_commit", "remaining": 1, "seconds": 30.0},
        {"endpoint": "wallets", "fault": "db_error", "remaining": 3, "seconds": None},
    ]
    table = run("sandbox", "fault", "--list").stdout.splitlines()
    assert table == [
        "endpoint      fault        left  seconds",
        "create_order  late_commit     1  30",
        "wallets       db_error        3  —",
    ]
    assert run("sandbox", "fault", "--clear").stdout == "dropped 4 queued fault(s)\n"
    assert run.sandbox.faults() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sandbox", "fault", "wallets", "db_error", "--seconds", "5"], "only late_commit"),
        (["sandbox", "fault", "--list", "--clear"], "go alone"),
        (["sandbox", "fault", "wallets", "--list"], "go alone"),
        (["sandbox", "fault"], "give ENDPOINT and FAULT (or --list, or --clear)"),
        (["sandbox", "fault", "wallets"], "Missing argument 'FAULT'. Choose from: db_error"),
    ],
)
def test_fault_misuse_is_exit_2(run: Cli, args: list[str], message: str) -> None:
    """Seconds on an untimed fault, --list with --clear or an endpoint: one line, exit 2."""
    result = run(*args)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert run.sandbox.faults() == []


def test_fault_list_and_clear_over_http(server: tuple[str, str]) -> None:
    """Against a sandbox server's control plane: queue (a timed fault too), list, clear."""
    base, _ = server
    assert clore("--base-url", base, "sandbox", "fault", "wallets", "db_error").exit_code == 0
    listed = json.loads(clore("--base-url", base, "sandbox", "fault", "--list", "--json").stdout)
    assert listed["faults"] == [
        {"endpoint": "wallets", "fault": "db_error", "remaining": 1, "seconds": None}
    ]
    timed = clore("--base-url", base, "sandbox", "fault", "create_order", "late_commit",
                  "--seconds", "30")  # fmt: skip
    assert timed.exit_code == 0, timed.stderr
    listed = json.loads(clore("--base-url", base, "sandbox", "fault", "--list", "--json").stdout)
    timed_fault = {"endpoint": "create_order", "fault": "late_commit", "remaining": 1}
    assert {**timed_fault, "seconds": 30.0} in listed["faults"]
    cleared = clore("--base-url", base, "sandbox", "fault", "--clear", "--json")
    assert json.loads(cleared.stdout) == {"cleared": 2}
    assert clore("--base-url", base, "sandbox", "fault", "--list").stdout == "No faults queued.\n"


def test_a_base_url_without_v1_gets_the_hint_on_any_command(
    server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command against a sandbox server's root (no /v1): the API's "unknown endpoint"
    answer comes with the one-line hint to add /v1."""
    base, key = server
    monkeypatch.setenv("CLORE_API_KEY", key)
    root = base.removesuffix("/v1")
    result = clore("--base-url", root, "wallets")
    assert result.exit_code != 0
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert f"does not end in /v1: the API is under /v1 (try {root}/v1)" in result.stderr
    ok = clore("--base-url", base, "wallets")
    assert ok.exit_code == 0 and "/v1" not in ok.stderr


# ---- the base URL hint and the recent orders ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "hinted"),
    [
        ("http://127.0.0.1:8765", True),
        ("http://127.0.0.1:8765/", True),
        ("https://proxy.example/clore", True),
        ("https://proxy.example/clore/v1", False),
        ("http://127.0.0.1:8765/v1/", False),
        ("ftp://host/x", False),
    ],
)
def test_a_base_url_without_v1_gets_a_one_line_hint(url: str, hinted: bool) -> None:
    """base_url_hint names the URL and the /v1 it lacks; None when it has it."""
    from clore._validate import base_url_hint

    hint = base_url_hint(url)
    if not hinted:
        assert hint is None
        return
    assert hint is not None and "\n" not in hint
    assert f"try {url.rstrip('/')}/v1" in hint


def test_the_orders_listed_are_kept_for_completion(run: Cli) -> None:
    """remember_orders (what `clore orders` calls) keys the listing as completion reads it."""
    from clore.cli._completion import EMBEDDED, remember_orders
    from clore.cli._context import AppContext
    from clore.rentals.recent import recall, recent_path

    order = run.rent_cheapest_4090()
    app = AppContext(sandbox_instance=run.sandbox, client_instance=run.client)
    remember_orders(app, run.client.my_orders())
    (kept,) = recall(EMBEDDED)
    assert (kept.id, kept.server_id, kept.ended) == (order["id"], order["si"], False)
    assert kept.gpu == "RTX 4090"
    assert oct(recent_path().stat().st_mode & 0o777) == "0o600"
    recent_path().write_text("not json")  # unreadable: no orders, and the next listing mends it
    assert recall(EMBEDDED) == []
    remember_orders(app, [])
    assert recall(EMBEDDED) == []
