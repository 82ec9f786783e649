"""``clore.rentals``: how each order is logged in to (remembered, 0600, passwords hidden),
its own known-hosts file, the renter's default key (configured or in ~/.ssh), the rule
refusing an SSH port nobody could log in to, the ``Include`` line of ~/.ssh/config, and
order statuses told apart by what the client did (budget stops)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import msgspec
import pytest

from clore import Order, ParameterError
from clore.rentals import (
    KEY_ENV,
    RentalLogins,
    add_include,
    budget_stops,
    credentials_for,
    default_public_key,
    known_hosts_path,
    login_problem,
    order_status,
    private_key_beside,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx me@host"


@pytest.fixture(autouse=True)
def _no_agent_or_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)


def order(order_id: int = 12, ct: float = 1_700_000_000.0, **fields: object) -> Order:
    record = {"id": order_id, "si": 34, "ct": ct, "mrl": 86400, "expired": False, **fields}
    return msgspec.convert(record, Order)


def key_pair(directory: Path, name: str = "id_ed25519") -> Path:
    """A public key file with a (fake) private half beside it; returns the .pub."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n")
    public = directory / f"{name}.pub"
    public.write_text(KEY + "\n")
    return public


def test_a_login_is_remembered_per_order_in_a_private_file(tmp_path: Path) -> None:
    """remember() keeps the key files and the password of an order in a 0600 file; get()
    finds it for that order only (the same id created at another time is another order)."""
    public = key_pair(tmp_path / "keys")
    logins = RentalLogins()
    logins.remember(order(), public_key=public, password="Secret123")
    found = logins.get(order())
    assert found is not None
    assert (found.public_key, found.private_key) == (str(public), str(public.with_suffix("")))
    assert found.password == "Secret123"
    assert stat.S_IMODE(logins.path.stat().st_mode) == 0o600
    assert logins.get(order(ct=1_700_000_999.0)) is None
    assert logins.get(order(order_id=13)) is None


def test_a_remembered_password_is_never_in_a_repr(tmp_path: Path) -> None:
    """repr() and str() of an entry say a password exists, never what it is."""
    entry = RentalLogins().remember(order(), password="Secret123")
    assert "Secret123" not in repr(entry) and "Secret123" not in str(entry)
    assert "password=<hidden>" in repr(entry)


def test_forget_drops_only_that_order(tmp_path: Path) -> None:
    """forget(order) removes its entry and says whether there was one."""
    logins = RentalLogins()
    logins.remember(order(1), password="a1")
    logins.remember(order(2), password="b2")
    assert (logins.forget(order(1)), logins.forget(order(1))) == (True, False)
    assert logins.get(order(1)) is None and logins.get(order(2)) is not None


def test_credentials_come_from_what_was_given_then_remembered_then_the_default_key(
    tmp_path: Path,
) -> None:
    """credentials_for: an explicit key or password first, else the order's remembered
    login, else the private half of ~/.ssh's default key, else None (no agent)."""
    assert credentials_for(order()) is None
    default = key_pair(Path.home() / ".ssh")
    assert credentials_for(order()).key_files == (default.with_suffix(""),)  # type: ignore[union-attr]
    RentalLogins().remember(order(), password="Remembered1")
    remembered = credentials_for(order())
    assert remembered is not None and remembered.password == "Remembered1"
    assert remembered.key_files == ()
    given = credentials_for(order(), identity=tmp_path / "k", user="ubuntu")
    assert given is not None and (given.key_files, given.username) == ((tmp_path / "k",), "ubuntu")


def test_the_agent_is_offered_when_no_key_file_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key file, an ssh-agent running: credentials that use the agent."""
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    found = credentials_for(order())
    assert found is not None and (found.agent, found.key_files) == (True, ())


def test_each_order_has_its_own_known_hosts_file() -> None:
    """known_hosts_path: one file per order (id and creation time) in a 0700 directory."""
    first, again, other = (
        known_hosts_path(order()),
        known_hosts_path(order()),
        known_hosts_path(order(ct=1_700_000_500.0)),
    )
    assert first == again != other
    assert first.name == "order-12-1700000000"
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700


def test_the_configured_key_comes_before_the_ssh_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$CLORE_SSH_KEY names the renter's key (a private file means its .pub); ~/.ssh's
    id_ed25519.pub, id_ecdsa.pub, id_rsa.pub are looked for otherwise, in that order."""
    ssh = Path.home() / ".ssh"
    key_pair(ssh, "id_rsa")
    assert default_public_key().path == ssh / "id_rsa.pub"  # type: ignore[union-attr]
    key_pair(ssh, "id_ecdsa")
    assert default_public_key().path == ssh / "id_ecdsa.pub"  # type: ignore[union-attr]
    configured = key_pair(tmp_path / "elsewhere", "work")
    monkeypatch.setenv(KEY_ENV, str(configured.with_suffix("")))
    found = default_public_key()
    assert found is not None and found.path == configured
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "missing.pub"))
    with pytest.raises(ParameterError, match=r"\$CLORE_SSH_KEY.*does not exist"):
        default_public_key()


def test_private_key_beside_names_the_private_half_when_it_exists(tmp_path: Path) -> None:
    """id_x.pub -> id_x when that file exists; None without it or for a non-.pub name."""
    public = key_pair(tmp_path)
    assert private_key_beside(public) == tmp_path / "id_ed25519"
    (tmp_path / "id_ed25519").unlink()
    assert private_key_beside(public) is None
    assert private_key_beside(tmp_path / "id_ed25519") is None


@pytest.mark.parametrize(
    ("ports", "key", "password", "refused"),
    [
        ({"22": "tcp"}, None, None, True),
        ({"22": "tcp", "8888": "http"}, None, None, True),
        ({"22": "tcp"}, KEY, None, False),
        ({"22": "tcp"}, None, "Pass1234", False),
        ({"8888": "http"}, None, None, False),
        (None, None, None, False),
    ],
)
def test_an_ssh_port_without_a_key_or_password_is_a_problem(
    ports: dict[str, str] | None, key: str | None, password: str | None, refused: bool
) -> None:
    """login_problem: port 22 forwarded with neither a key nor a password; it says how."""
    problem = login_problem(ports, ssh_key=key, ssh_password=password)
    assert (problem is not None) == refused
    if problem is not None:
        assert "--ssh-key" in problem and "--ssh-password" in problem and "\n" not in problem


def test_add_include_puts_the_line_on_top_once_with_a_backup(tmp_path: Path) -> None:
    """The Include line goes first (before any Host block), the old file is copied once,
    a second call changes nothing; the file is 0600."""
    config = Path.home() / ".ssh" / "config"
    config.parent.mkdir(parents=True)
    config.write_text("Host box\n    HostName 10.0.0.1\n")
    include = Path.home() / ".ssh" / "clore_config"
    added = add_include(include)
    assert added is not None and added.line == "Include ~/.ssh/clore_config"
    assert added.backup == config.with_name("config.clore-backup")
    assert added.backup.read_text() == "Host box\n    HostName 10.0.0.1\n"
    lines = config.read_text().splitlines()
    assert lines[1] == "Include ~/.ssh/clore_config" and lines[-2:] == [
        "Host box",
        "    HostName 10.0.0.1",
    ]
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert add_include(include) is None
    assert add_include(include.absolute()) is None
    assert config.read_text().count("Include") == 1


def test_add_include_recognises_an_existing_line_and_creates_a_missing_file(
    tmp_path: Path,
) -> None:
    """A config that already includes the file (absolute, relative to ~/.ssh, any case)
    is left alone; no config at all gets one holding the line, no backup."""
    ssh = Path.home() / ".ssh"
    include = ssh / "clore_config"
    assert add_include(include) is not None
    assert (ssh / "config").read_text().endswith("Include ~/.ssh/clore_config\n")
    for text in (f"Include {include}\n", "include clore_config\n", "INCLUDE=other clore_config\n"):
        (ssh / "config").write_text(text)
        assert add_include(include) is None, text
    outside = tmp_path / "my dir" / "clore"
    (ssh / "config").write_text("")
    added = add_include(outside)
    assert added is not None and added.line == f'Include "{outside}"'


def _log(lines: list[object]) -> None:
    from clore.workflows.state import workflows_dir

    path = workflows_dir() / "guard.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "garbage\n")


def test_an_order_the_guard_cancelled_is_budget_stopped_not_cancelled() -> None:
    """An order ended early that this client's guard logged is budget_stopped; another
    ended early is cancelled; one that ran its course is expired; a running spot bid not
    winning is outbid."""
    ct = 1_700_000_000.0
    _log([{"at": ct + 50, "order_id": 7, "reason": "max_time: 60 s", "source": "guard"}, 5])
    stops = budget_stops()
    assert [s.reason for s in stops[7]] == ["max_time: 60 s"]
    stopped = order(7, ct, expired=True, mrl=3600)
    assert order_status(stopped, ct + 100, stops=stops) == "budget_stopped"
    assert order_status(stopped, ct + 100) == "cancelled"
    assert order_status(order(8, ct, expired=True, mrl=3600), ct + 100, stops=stops) == (
        "cancelled"
    )
    assert order_status(order(9, ct, expired=True, mrl=60), ct + 100, stops=stops) == "expired"
    spot = order(10, ct, spot=True, tcp_ports=["22:1"], pub_cluster=["h"])
    assert order_status(spot, ct + 10, spot_active=False) == "outbid"
    assert budget_stops(Path("/nonexistent/guard.log")) == {}


def test_the_jupyter_token_is_remembered_privately_and_never_shown() -> None:
    """remember(jupyter_token=...) keeps the token in the 0600 file beside the login; the
    entry's repr and str hide it (and the password)."""
    logins = RentalLogins()
    logins.remember(order(), password="Secret123", jupyter_token="tok3n")
    found = logins.get(order())
    assert found is not None and (found.jupyter_token, found.password) == ("tok3n", "Secret123")
    assert stat.S_IMODE(logins.path.stat().st_mode) == 0o600
    assert json.loads(logins.path.read_text())["logins"][0]["jupyter_token"] == "tok3n"
    for shown in (repr(found), str(found)):
        assert "tok3n" not in shown and "Secret123" not in shown
        assert "jupyter_token=<hidden>" in shown


def test_the_jupyter_url_carries_the_token_as_jupyter_takes_it() -> None:
    """jupyter_url: URL/?token=TOKEN, the token URL-quoted; no token: the URL as it is."""
    from clore.rentals.credentials import jupyter_url

    assert (
        jupyter_url("https://h.example:8443/", "a/b+c") == "https://h.example:8443/?token=a%2Fb%2Bc"
    )
    assert jupyter_url("http://127.0.0.1:9", None) == "http://127.0.0.1:9"


def test_login_key_is_the_key_rented_with_else_the_default_one(tmp_path: Path) -> None:
    """login_key: the remembered private key; for a password-only order none (ssh asks);
    for an order not rented here, the default key's private half."""
    from clore.rentals.credentials import login_key

    public = key_pair(tmp_path / "keys", "work")
    home = tmp_path / "home"
    default = key_pair(home / ".ssh")
    logins = RentalLogins()
    logins.remember(order(1), public_key=public)
    logins.remember(order(2), password="Secret123")
    assert login_key(order(1), home=home) == public.with_suffix("")
    assert login_key(order(2), home=home) is None
    assert login_key(order(3), home=home) == default.with_suffix("")
