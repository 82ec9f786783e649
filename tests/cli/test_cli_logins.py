"""Credentials that work: an SSH port nobody could log in to is refused (exit 2, nothing
sent); the default key is used and named in the confirmation and the dry run; the login
is remembered per order (0600, the password never shown); ssh-config entries carry the
key, the order's own known-hosts file and accept-new, and --write adds the Include line
once, keeping a backup."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cli_helpers import Cli

NO_LOGIN = "clore: error: port 22 is forwarded but no SSH key or password would be set"


@pytest.mark.no_default_key
@pytest.mark.parametrize("mode", ["--yes", "--dry-run"])
def test_an_ssh_port_without_key_or_password_is_refused(run: Cli, mode: str) -> None:
    """No --ssh-key, no --ssh-password, no default key: exit 2, one line saying how to
    fix it, nothing on stdout, no order."""
    result = run("rent", "1", mode)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(NO_LOGIN), result.stderr
    assert "--ssh-key" in lines[0] and "--ssh-password" in lines[0] and "ssh-keygen" in lines[0]
    assert result.stdout == "" and run.client.my_orders() == []


@pytest.mark.no_default_key
def test_spot_bid_refuses_it_too_and_an_order_without_ssh_is_fine(run: Cli) -> None:
    """spot bid shares the rule; an order forwarding no port 22 needs no login."""
    bid = run("spot", "bid", "1", "--price", "0.0001btc", "--yes")
    assert bid.exit_code == 2 and NO_LOGIN in bid.stderr
    doc = run.json("rent", "1", "--dry-run", "--ports", "8888:http")
    assert "ssh_key" not in doc["body"] and doc["ssh_key_file"] is None


def test_the_default_key_is_named_in_the_dry_run(run: Cli, default_ssh_key: Path) -> None:
    """--dry-run names the default key it would send (human and JSON)."""
    human = run("rent", "1", "--dry-run")
    assert human.exit_code == 0, human.output
    assert "login: ~/.ssh/id_ed25519.pub (your default key)" in human.stdout
    doc = run.json("rent", "1", "--dry-run")
    assert (doc["ssh_key_file"], doc["ssh_key_default"]) == (str(default_ssh_key), True)
    given = run.json("rent", "1", "--dry-run", "--ssh-key", str(default_ssh_key))
    assert given["ssh_key_default"] is False


def test_the_confirmation_names_the_key_and_never_the_password(run: Cli) -> None:
    """The prompt's summary says which key goes with the order; a password is mentioned,
    never shown."""
    server = str(run.json("market", "--limit", "1")["servers"][0]["id"])
    result = run("rent", server, input="n\n")
    assert result.exit_code == 1, result.output
    assert "  login    ~/.ssh/id_ed25519.pub (your default key)" in result.stderr
    shown = run("rent", server, "--ssh-password", "Hidden987", input="n\n")
    assert "  login    the --ssh-password (not shown)" in shown.stderr
    assert "Hidden987" not in shown.output
    assert run.client.my_orders() == []


def test_the_login_is_remembered_per_order_in_a_private_file(run: Cli) -> None:
    """After rent the data dir holds the order's key files and password (0600); neither
    output shows the password."""
    from clore.rentals import RentalLogins

    key = Path.home() / ".ssh" / "id_ed25519.pub"
    rent = ["rent", "--cheapest", "gpu=4090", "--yes", "--ssh-password", "Hidden987"]
    result = run(*rent, "--ssh-key", str(key))
    assert result.exit_code == 0, result.output
    assert "Hidden987" not in result.output
    order = run.client.my_orders()[0]
    saved = RentalLogins().get(order)
    assert saved is not None and saved.password == "Hidden987"
    assert saved.private_key == str(Path.home() / ".ssh" / "id_ed25519")
    assert stat.S_IMODE(RentalLogins().path.stat().st_mode) == 0o600


def test_ssh_config_entries_carry_key_known_hosts_and_accept_new(run: Cli) -> None:
    """Each entry: IdentityFile (the private half of the key rented with), its own
    UserKnownHostsFile, StrictHostKeyChecking accept-new."""
    first = run.rent_cheapest_4090()
    second = run.rent_cheapest_4090()
    doc = run.json("ssh-config")
    hosts = {h["order_id"]: h for h in doc["hosts"]}
    key = str(Path.home() / ".ssh" / "id_ed25519")
    assert {h["identity_file"] for h in hosts.values()} == {key}
    assert hosts[first["id"]]["known_hosts"] != hosts[second["id"]]["known_hosts"]
    text = run("ssh-config").stdout
    block = text.split(f"Host clore-{first['id']}\n")[1].split("\n\n")[0]
    assert f"    IdentityFile {key}" in block
    assert f"    UserKnownHostsFile {hosts[first['id']]['known_hosts']}" in block
    assert "    StrictHostKeyChecking accept-new" in block


def test_ssh_config_write_adds_the_include_once_with_a_backup(run: Cli) -> None:
    """An existing ~/.ssh/config gets `Include ~/.ssh/clore_config` on top, the old file
    kept as config.clore-backup; a second --write changes nothing there."""
    run.rent_cheapest_4090()
    config = Path.home() / ".ssh" / "config"
    config.write_text("Host old\n    HostName 10.1.1.1\n")
    first = run("ssh-config", "--write")
    assert first.exit_code == 0, first.output
    assert config.read_text().splitlines()[1] == "Include ~/.ssh/clore_config"
    backup = config.with_name("config.clore-backup")
    assert backup.read_text() == "Host old\n    HostName 10.1.1.1\n"
    assert f"(the old file is {backup})" in first.stderr
    again = json.loads(run("ssh-config", "--write", "--json").stdout)
    assert again["include_added"] is None and again["backup"] is None
    assert config.read_text().count("Include") == 1
    assert not config.with_name("config.clore-backup.1").exists()


def test_the_ssh_line_names_a_key_ssh_would_not_try_itself(
    run: Cli, tmp_path: Path, default_ssh_key: Path
) -> None:
    """A key outside ~/.ssh's default names: the printed ssh command carries -i KEY; the
    default key: no -i (ssh tries it)."""
    import shutil

    elsewhere = tmp_path / "keys"
    elsewhere.mkdir()
    for name in ("id_ed25519", "id_ed25519.pub"):
        shutil.copy(default_ssh_key.parent / name, elsewhere / f"work{name[10:]}")
    result = run("rent", "--cheapest", "gpu=4090", "--yes", "--wait", "--ssh-key",
                 str(elsewhere / "work.pub"))  # fmt: skip
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("ssh:"))
    assert line.split()[1:4] == ["ssh", "-i", str(elsewhere / "work")]
    plain = run("rent", "--cheapest", "gpu=4090", "--yes", "--wait")
    line = next(x for x in plain.stdout.splitlines() if x.startswith("ssh:"))
    assert line.split()[1:3] == ["ssh", "root@127.0.0.1"]


@pytest.mark.no_default_key
def test_watch_rent_refuses_an_ssh_port_nobody_could_log_in_to(run: Cli) -> None:
    """watch --rent shares the rule: exit 2 before any request, no order."""
    result = run("watch", "gpu=4090", "--max-price", "1", "--rent", "--yes", "--count", "1")
    assert result.exit_code == 2, result.output
    assert NO_LOGIN in result.stderr and result.stdout == ""
    assert run.client.my_orders() == []


def test_rent_remembers_the_jupyter_token_so_open_logs_in(run: Cli) -> None:
    """rent --jupyter-token with port 8888 as http keeps the token (0600, beside the
    login); `clore open --with-token` prints the URL that logs in, `clore order` says the
    token is kept without showing it."""
    from clore.rentals import RentalLogins

    doc = run.json("rent", "--cheapest", "gpu=4090", "--yes", "--wait",
                   "--ports", "22:tcp,8888:http", "--jupyter-token", "Jtok123")  # fmt: skip
    oid = doc["order"]["id"]
    saved = RentalLogins().get(run.client.get_order(oid))
    assert saved is not None and saved.jupyter_token == "Jtok123"
    assert stat.S_IMODE(RentalLogins().path.stat().st_mode) == 0o600
    opened = run("open", str(oid), "--with-token")
    assert opened.stdout.strip().endswith("/?token=Jtok123"), opened.output
    view = run("order", str(oid))
    assert "Jtok123" not in view.output and f"`clore open {oid}`" in view.stdout
