"""``--ssh-key`` sends only a public key: a private key file is never sent (its ``.pub``
sibling is used, and said so, when it exists), and a file that is not an OpenSSH public key
is refused with exit 2, one line, nothing sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import Cli

PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@box"
SECRET = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQPRIVATEMATERIAL"
PRIVATE = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n-----END OPENSSH PRIVATE KEY-----\n"
CLORE = str(Path(sys.executable).with_name("clore"))


def _refused(run: Cli, *args: str) -> str:
    """Run ``rent 1 ARGS`` twice (--dry-run, --yes): exit 2, one stderr line, nothing sent
    and no key material anywhere; return the line."""
    lines = []
    for mode in ("--dry-run", "--yes"):
        result = run("rent", "1", mode, *args)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert SECRET not in result.output and "PRIVATE KEY-----" not in result.output
        stderr = result.stderr.strip().splitlines()
        assert len(stderr) == 1 and stderr[0].startswith("clore: error: --ssh-key: ")
        lines.append(stderr[0])
    assert run.client.my_orders() == []
    return lines[0]


def _sent_key_length(run: Cli, *args: str) -> tuple[int, str]:
    result = run("rent", "1", "--dry-run", "--json", *args)
    assert result.exit_code == 0, result.output
    return len(PUBLIC), json.loads(result.stdout)["body"]["ssh_key"]


def test_a_private_key_file_without_pub_is_refused(run: Cli, tmp_path: Path) -> None:
    """--ssh-key ~/.ssh/id_ed25519 (the .pub forgotten, none beside it): refused, unsent."""
    key = tmp_path / "id_ed25519"
    key.write_text(PRIVATE)
    line = _refused(run, "--ssh-key", str(key))
    assert f"{key} is a private key: give its public half (the .pub file) instead" in line


@pytest.mark.parametrize(
    "content",
    [
        PRIVATE,
        f"-----BEGIN RSA PRIVATE KEY-----\n{SECRET}\n-----END RSA PRIVATE KEY-----\n",
        f"PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\n{SECRET}\n",
        f"openssh-key-v1\x00{SECRET}",
    ],
)
def test_a_private_key_with_a_pub_beside_it_sends_the_pub(
    run: Cli, tmp_path: Path, content: str
) -> None:
    """id_x given and id_x.pub present: the .pub is sent, and stderr says so."""
    key = tmp_path / "id_x"
    key.write_text(content)
    (tmp_path / "id_x.pub").write_text(PUBLIC + "\n")
    result = run("rent", "1", "--dry-run", "--json", "--ssh-key", str(key))
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)["body"]
    assert body["ssh_key"] == f"<redacted: {len(PUBLIC)} characters>"
    assert f"note: --ssh-key: {key} is not a public key; sending {key}.pub" in result.stderr
    assert SECRET not in result.output


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("myhost\n", "is not an OpenSSH public key"),
        ("", "is not an OpenSSH public key"),
        ("ssh-ed25519\n", "is not an OpenSSH public key"),
        (f"{PUBLIC}\n{PUBLIC}\n", "holds several lines"),
        (f"{PUBLIC}\n{PRIVATE}", "is a private key"),
        ("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n", "is not an"),
        ("ssh-rsa AAAA" + "B" * 9000, "is too large to be a public key"),
        ("\x00\x01\x02binary", "is not an OpenSSH public key"),
    ],
)
def test_a_file_that_is_not_one_public_key_is_refused(
    run: Cli, tmp_path: Path, content: str, why: str
) -> None:
    """Anything but one OpenSSH public key line: exit 2 naming the file and why."""
    key = tmp_path / "hostname"
    key.write_text(content)
    assert f"{key} {why}" in _refused(run, "--ssh-key", str(key))


def test_a_directory_or_a_missing_file_is_refused(run: Cli, tmp_path: Path) -> None:
    """A directory, and a file that does not exist: exit 2, one line."""
    assert "is a directory" in _refused(run, "--ssh-key", str(tmp_path))
    assert "does not exist" in _refused(run, "--ssh-key", str(tmp_path / "nope.pub"))


def test_a_private_key_pasted_as_the_value_is_refused(run: Cli) -> None:
    """--ssh-key "$(cat ~/.ssh/id_ed25519)": refused without echoing it."""
    assert "the value is a private key" in _refused(run, "--ssh-key", PRIVATE)


def test_a_public_key_file_and_a_public_key_value_are_sent(run: Cli, tmp_path: Path) -> None:
    """A .pub file (blank lines around the key trimmed) and the key itself as the value."""
    key = tmp_path / "id_ed25519.pub"
    key.write_text(f"\n{PUBLIC}\n\n")
    length, sent = _sent_key_length(run, "--ssh-key", str(key))
    assert sent == f"<redacted: {length} characters>"
    length, sent = _sent_key_length(run, "--ssh-key", PUBLIC)
    assert sent == f"<redacted: {length} characters>"


def test_a_private_key_at_the_default_path_is_refused(run: Cli) -> None:
    """A private key saved as ~/.ssh/id_ed25519.pub (the default) is refused, not sent."""
    ssh = Path.home() / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (ssh / "id_ed25519.pub").write_text(PRIVATE)
    assert "is a private key" in _refused(run)


def test_spot_bid_refuses_a_private_key_too(run: Cli, tmp_path: Path) -> None:
    """Every order-creating command shares the rule: spot bid refuses it, nothing sent."""
    key = tmp_path / "id_rsa"
    key.write_text(PRIVATE)
    result = run("spot", "bid", "1", "--price", "0.00001btc", "--yes", "--ssh-key", str(key))
    assert result.exit_code == 2, result.output
    assert "is a private key" in result.stderr and SECRET not in result.output
    assert run.client.my_orders() == []


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    for name in ("CLORE_CONFIG_DIR", "CLORE_CACHE_DIR", "CLORE_DATA_DIR"):
        env[name] = os.environ[name]
    return env


@pytest.mark.parametrize("which", ["hostname", "private"])
def test_a_real_process_refuses_a_non_public_key_and_sends_nothing(
    which: str, tmp_path: Path
) -> None:
    """`clore --sandbox rent ID --ssh-key /etc/hostname` (and a private key): exit 2, one
    line on stderr, no traceback, no order in the sandbox afterwards."""
    if which == "hostname":
        path = Path("/etc/hostname")
        if not path.is_file():
            path = tmp_path / "hostname"
            path.write_text("myhost\n")
    else:
        path = tmp_path / "id_ed25519"
        path.write_text(PRIVATE)
    listed = subprocess.run(
        [CLORE, "--sandbox", "market", "--json", "--limit", "1"],
        capture_output=True, text=True, env=_env(), timeout=60,
    )  # fmt: skip
    server = str(json.loads(listed.stdout)["servers"][0]["id"])
    done = subprocess.run(
        [CLORE, "--sandbox", "rent", server, "--yes", "--ssh-key", str(path)],
        capture_output=True, text=True, env=_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"clore: error: --ssh-key: {path} is ")
    assert "Traceback" not in done.stderr and SECRET not in done.stderr + done.stdout
    orders = subprocess.run(
        [CLORE, "--sandbox", "orders", "--json"],
        capture_output=True, text=True, env=_env(), timeout=60,
    )  # fmt: skip
    assert json.loads(orders.stdout)["orders"] == []
