"""clore ssh, ssh-config, open and copy: endpoints resolved, programs handed over."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cli_helpers import Cli

import clore.cli.access as access


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record what would be exec'd instead of replacing the test process."""
    calls: list[list[str]] = []
    monkeypatch.setattr(access.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(access.os, "execvp", lambda file, argv: calls.append(list(argv)))
    return calls


def _ready(run: Cli) -> tuple[int, str, int, str]:
    order = run.rent_cheapest_4090()
    host = order["pub_cluster"][0]
    port = int(next(p for p in order["tcp_ports"] if p.startswith("22:")).split(":")[1])
    return order["id"], host, port, order["derived"]["http_url"]


#: ssh's options for a loopback host (a sandbox order): no host-key check, no entry.
LOOPBACK = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
LOOPBACK += ["-o", "LogLevel=ERROR"]


def _key() -> str:
    """The private half of the default key the test's rent sent."""
    return str(Path.home() / ".ssh" / "id_ed25519")


def test_ssh_execs_ssh_with_host_port_key_user_and_command(
    run: Cli, executed: list[list[str]]
) -> None:
    """clore ssh ORDER -- CMD runs ssh -p PORT -i KEY root@HOST CMD, KEY the private half
    of the key the order was rented with."""
    oid, host, port, _ = _ready(run)
    result = run("ssh", str(oid), "--", "nvidia-smi", "-L")
    assert result.exit_code == 0, result.output
    assert executed == [
        ["ssh", "-p", str(port), "-i", _key(), *LOOPBACK, f"root@{host}", "nvidia-smi", "-L"]
    ]


def test_ssh_print_and_json_show_the_command(run: Cli, executed: list[list[str]]) -> None:
    """--print prints the command line; --json the argv, host, port and user; nothing runs."""
    oid, host, port, _ = _ready(run)
    (Path.home() / ".ssh" / "k").write_text("a key\n")
    printed = run("ssh", str(oid), "--print", "--user", "ubuntu", "-i", "~/.ssh/k")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.strip() == " ".join(
        ["ssh", "-p", str(port), "-i", str(Path.home() / ".ssh" / "k"), *LOOPBACK, f"ubuntu@{host}"]
    )
    doc = run.json("ssh", str(oid))
    assert doc == {"argv": ["ssh", "-p", str(port), "-i", _key(), *LOOPBACK, f"root@{host}"],
                   "host": host, "port": port, "user": "root"}  # fmt: skip
    assert executed == []


def test_ssh_to_a_provisioning_order_explains_and_exits_1(run: Cli) -> None:
    """Before the container is up there is no endpoint: exit 1 with a hint."""
    oid = run.json("rent", "--cheapest", "gpu=4090", "--yes")["order"]["id"]
    result = run("ssh", str(oid))
    assert result.exit_code == 1
    assert f"order {oid} has no SSH endpoint yet" in result.stderr


def test_ssh_config_prints_host_entries(run: Cli) -> None:
    """Host clore-<id> entries with HostName, Port and User for active orders."""
    oid, host, port, _ = _ready(run)
    result = run("ssh-config")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert f"Host clore-{oid}\n    HostName {host}\n    Port {port}\n    User root" in text
    doc = run.json("ssh-config")
    assert doc["path"] is None
    assert doc["hosts"][0]["alias"] == f"clore-{oid}" and doc["hosts"][0]["port"] == port


@pytest.mark.no_default_key
def test_ssh_config_write_creates_a_private_include_file(run: Cli) -> None:
    """--write replaces ~/.ssh/clore_config (0600, ~/.ssh made 0700) and puts the Include
    line in a new ~/.ssh/config."""
    order = run.rent_cheapest_4090("--ssh-password", "Secret123")
    result = run("ssh-config", "--write")
    assert result.exit_code == 0, result.output
    path = Path.home() / ".ssh" / "clore_config"
    assert f"Host clore-{order['id']}" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700  # ~/.ssh did not exist
    assert "Include ~/.ssh/clore_config" in (Path.home() / ".ssh" / "config").read_text()
    assert "added `Include ~/.ssh/clore_config` at the top of" in result.stderr
    assert result.stdout == ""


def test_open_prints_the_http_url(run: Cli) -> None:
    """clore open prints the forwarded HTTP URL (no browser when piped), never the Jupyter
    token rent generated and kept for the http port: only --with-token shows it."""
    from clore.rentals import RentalLogins
    from clore.rentals.credentials import jupyter_url

    oid, _, _, url = _ready(run)
    result = run("open", str(oid))
    assert (result.exit_code, result.stdout.strip()) == (0, url)
    login = RentalLogins().get(run.client.get_order(oid))
    assert login is not None and login.jupyter_token
    assert login.jupyter_token not in result.output
    assert run.json("open", str(oid)) == {
        "order_id": oid,
        "url": url,
        "token_remembered": True,
        "login_url": None,
    }
    shown = run.json("open", str(oid), "--with-token")
    assert shown["login_url"] == jupyter_url(url, login.jupyter_token)


def test_ssh_with_a_missing_key_file_is_refused_before_any_request(
    run: Cli, executed: list[list[str]]
) -> None:
    """ssh -i KEY where KEY does not exist: one stderr line naming it, exit 2, no request,
    nothing run."""
    oid, _, _, _ = _ready(run)
    seen: list[str] = []
    result = run("ssh", str(oid), "-i", "~/.ssh/nokey", client=_Recording(run.client, seen))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "clore: error: -i: key file ~/.ssh/nokey does not exist"
    assert (result.stdout, seen, executed) == ("", [], [])


def _remember_token(run: Cli, oid: int, token: str) -> None:
    from clore.rentals import RentalLogins

    RentalLogins().remember(run.client.get_order(oid), jupyter_token=token)


def test_open_opens_the_browser_logged_in_and_prints_the_token_only_on_request(
    run: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a Jupyter token remembered: the browser gets URL/?token=TOKEN; the printed URL
    is the plain one (a note says --with-token prints the other); --with-token prints the
    URL that logs in."""
    import webbrowser

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url))
    oid, _, _, url = _ready(run)
    _remember_token(run, oid, "t0k/en+1")
    login = f"{url.rstrip('/')}/?token=t0k%2Fen%2B1"
    shown = run("open", str(oid), "--browser")
    assert (shown.exit_code, shown.stdout.strip(), opened) == (0, url, [login])
    assert "t0k" not in shown.output
    piped = run("open", str(oid))
    assert piped.stdout.strip() == url and "t0k" not in piped.output
    assert f"`clore open {oid} --with-token`" in piped.stderr
    asked = run("open", str(oid), "--with-token")
    assert (asked.exit_code, asked.stdout.strip()) == (0, login)
    doc = run.json("open", str(oid), "--with-token")
    assert (doc["url"], doc["login_url"], doc["token_remembered"]) == (url, login, True)
    assert "t0k" not in json.dumps(run.json("open", str(oid)))


def test_open_with_token_but_none_remembered_warns_and_prints_the_plain_url(run: Cli) -> None:
    """--with-token for an order rented without a kept token: a warning, the plain URL."""
    from clore.rentals import RentalLogins

    oid, _, _, url = _ready(run)
    assert RentalLogins().forget(run.client.get_order(oid))  # rented from elsewhere
    result = run("open", str(oid), "--with-token")
    assert (result.exit_code, result.stdout.strip()) == (0, url)
    assert f"no Jupyter token is remembered for order {oid}" in result.stderr


def test_open_without_http_port_exits_1(run: Cli) -> None:
    """An order without an http port has no URL."""
    oid = run.json("rent", "--cheapest", "gpu=4090", "--yes", "--wait", "--ports", "22:tcp")
    result = run("open", str(oid["order"]["id"]))
    assert result.exit_code == 1 and "has no HTTP URL" in result.stderr


def test_copy_uses_rsync_over_ssh_port(run: Cli, executed: list[list[str]]) -> None:
    """copy LOCAL ORDER:path runs rsync -e 'ssh -p PORT' to root@HOST:path."""
    oid, host, port, _ = _ready(run)
    result = run("copy", "./data", f"{oid}:/workspace/data", "--tool", "rsync")
    assert result.exit_code == 0, result.output
    argv = executed[0]
    shell = " ".join(["ssh", "-p", str(port), "-i", _key(), *LOOPBACK])
    assert argv[0] == "rsync" and argv[argv.index("-e") + 1] == shell
    # Options the rsync 2.6.9 / openrsync of macOS knows too (no --info=progress2).
    assert argv[1 : argv.index("-e")] == ["-az", "--partial", "--progress"]
    assert argv[-2:] == ["./data", f"root@{host}:/workspace/data"]


def test_copy_from_the_order_with_scp(run: Cli, executed: list[list[str]]) -> None:
    """copy ORDER:path LOCAL with --tool scp uses scp -P PORT (and -r when asked)."""
    oid, host, port, _ = _ready(run)
    doc = run.json("copy", f"{oid}:/root/out", ".", "--tool", "scp", "-r")
    assert doc["argv"] == [
        "scp", "-P", str(port), "-i", _key(), *LOOPBACK, "-r", f"root@{host}:/root/out", ".",
    ]  # fmt: skip
    assert executed == []


def test_copy_needs_exactly_one_remote_side(run: Cli) -> None:
    """Two local paths (or two remote ones) are a usage error."""
    for src, dst in (("a", "b"), ("1:a", "2:b")):
        result = run("copy", src, dst)
        assert result.exit_code == 2
        assert "exactly one of SRC and DST" in result.stderr


def test_missing_program_is_reported(run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ssh installed the command says so (exit 1)."""
    oid, _, _, _ = _ready(run)
    monkeypatch.setattr(access.shutil, "which", lambda name: None)
    result = run("ssh", str(oid))
    assert result.exit_code == 1 and "ssh is not installed" in result.stderr


class _Recording:
    """A client wrapper that records the names of the SDK methods called."""

    def __init__(self, client: object, seen: list[str]) -> None:
        self._client, self._seen = client, seen

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._client, name)
        if callable(attr):
            self._seen.append(name)
        return attr
