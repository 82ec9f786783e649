"""Logging into a machine with real OpenSSH clients and asyncssh: who gets in, what runs."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from machines_support import KeyPair, OpenSSH, make_key

from clore.sandbox.machines import Endpoint

PASSWORD = "Secret123"


@pytest.fixture
def key(workdir: Path) -> KeyPair:
    return make_key(workdir)


@pytest.fixture
def endpoint(start: Callable[..., Endpoint], key: KeyPair) -> Endpoint:
    return start(ssh_password=PASSWORD, ssh_key=key.public, env={"GREETING": "hello there"})


def test_password_login_runs_the_command_and_returns_its_exit_code(
    endpoint: Endpoint, workdir: Path
) -> None:
    """OpenSSH logs in as root with the order's password; stdout, stderr and status come back."""
    result = OpenSSH(endpoint, workdir, password=PASSWORD).ssh("echo out; echo err >&2; exit 7")
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")


def test_key_login_runs_in_home_with_the_order_env(
    endpoint: Endpoint, workdir: Path, key: KeyPair
) -> None:
    """The private key of the order's ssh_key logs in; the shell starts in HOME with its env."""
    result = OpenSSH(endpoint, workdir, key=key).ssh(
        'test "$PWD" = "$HOME" && echo "$USER|$GREETING"'
    )
    assert (result.returncode, result.stdout) == (0, "root|hello there\n"), result.stderr


def test_wrong_password_is_refused(endpoint: Endpoint, workdir: Path) -> None:
    """A wrong password gets OpenSSH's 'Permission denied' and exit status 255."""
    result = OpenSSH(endpoint, workdir, password="Wrong999").ssh("true")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_wrong_key_is_refused(endpoint: Endpoint, workdir: Path) -> None:
    """A key that is not the order's is refused."""
    other = make_key(workdir, "other_key")
    result = OpenSSH(endpoint, workdir, key=other).ssh("true")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


async def test_other_users_are_refused_even_with_the_right_password(endpoint: Endpoint) -> None:
    """Only root logs in: the right password for another user name is refused."""
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1",
            endpoint.ssh_port,
            username="ubuntu",
            password=PASSWORD,
            known_hosts=None,
            client_keys=None,
        )


async def test_an_order_without_password_or_key_lets_nobody_in(
    start: Callable[..., Endpoint],
) -> None:
    """With neither ssh_password nor ssh_key nothing authenticates."""
    bare = start()
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1",
            bare.ssh_port,
            username="root",
            password="",
            known_hosts=None,
            client_keys=None,
        )


async def test_asyncssh_client_gets_exit_status_stdin_and_signals(
    endpoint: Endpoint, key: KeyPair
) -> None:
    """asyncssh as a client: exit status, 100 kB of stdin through, a signal ends a command."""
    async with asyncssh.connect(
        "127.0.0.1",
        endpoint.ssh_port,
        username="root",
        client_keys=[key.key],
        known_hosts=None,
    ) as conn:
        run = await conn.run("exit 3")
        counted = await conn.run("wc -c", input="x" * 100_000)
        process = await conn.create_process("sleep 30")
        await asyncio.sleep(0.2)
        process.send_signal("TERM")
        await asyncio.wait_for(process.wait_closed(), 5)
    assert run.exit_status == 3
    assert str(counted.stdout).strip() == "100000"
    assert process.exit_signal[0] == "TERM"


async def test_interactive_shell_gets_a_terminal_with_job_control(
    endpoint: Endpoint, key: KeyPair
) -> None:
    """A pty session runs the shell with the client's window size and job control."""
    async with asyncssh.connect(
        "127.0.0.1",
        endpoint.ssh_port,
        username="root",
        client_keys=[key.key],
        known_hosts=None,
    ) as conn:
        process = await conn.create_process(term_type="xterm", term_size=(101, 33))
        process.stdin.write("stty size; sleep 20 & jobs; echo TERM=$TERM; exit 4\n")
        output = await asyncio.wait_for(process.stdout.read(), 10)
        await asyncio.wait_for(process.wait_closed(), 5)
    assert "33 101" in output
    assert "Running" in output
    assert "TERM=xterm" in output
    assert process.exit_status == 4


def test_scp_and_sftp_round_trip_a_file(endpoint: Endpoint, workdir: Path, key: KeyPair) -> None:
    """scp up (SFTP mode), scp -O back, and sftp see the same bytes at ~/ and /root/."""
    client = OpenSSH(endpoint, workdir, key=key)
    payload = bytes(range(256)) * 400
    (workdir / "up.bin").write_bytes(payload)
    up = client.run("scp", str(workdir / "up.bin"), "root@127.0.0.1:data.bin")
    back = client.run("scp", "-O", "root@127.0.0.1:/root/data.bin", str(workdir / "back.bin"))
    listing = client.run("sftp", "-b", "-", "root@127.0.0.1", input="pwd\nls -l data.bin\n")
    remote = client.ssh("md5sum data.bin")
    assert (up.returncode, back.returncode, listing.returncode) == (0, 0, 0), (
        up.stderr + back.stderr + listing.stderr
    )
    assert payload == (workdir / "back.bin").read_bytes()
    assert "Remote working directory: /root" in listing.stdout
    assert "data.bin" in listing.stdout
    assert remote.stdout.startswith(hashlib.md5(payload).hexdigest())


def test_rsync_over_ssh_copies_a_tree(endpoint: Endpoint, workdir: Path, key: KeyPair) -> None:
    """rsync -e ssh copies a directory into the machine (rsync runs there over exec)."""
    tree = workdir / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.txt").write_text("beta\n")
    client = OpenSSH(endpoint, workdir, key=key)
    copied = client.rsync("-a", f"{tree}/", "root@127.0.0.1:tree/")
    assert copied.returncode == 0, copied.stderr
    assert client.ssh("cat tree/a.txt tree/sub/b.txt").stdout == "alpha\nbeta\n"
