"""CLI tests run every command through click's runner against the in-process sandbox.

The sandbox, its client and the CLI share one ``ManualClock``: pacing waits, ``--wait``,
``--watch`` and ``--walk`` advance simulated time instantly. (``pytest_plugins`` is only
allowed in the root conftest, so ``clore.testing``'s fixtures are imported.)

Every test's home has a default SSH key pair (``~/.ssh/id_ed25519`` and its ``.pub``, one
real ed25519 pair made once per session), as a renter's usually does: ``rent`` refuses an
SSH port nobody could log in to. A test marked ``no_default_key`` gets an empty home.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cli_helpers import Cli

from clore.testing import sandbox, sandbox_clock, sandbox_factory  # noqa: F401

if TYPE_CHECKING:
    from clore import Clore
    from clore._clock import ManualClock
    from clore.sandbox import Sandbox


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_default_key: the test's home has no ~/.ssh key")


@pytest.fixture(scope="session")
def session_key_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ed25519 key pair (``id_ed25519``, ``id_ed25519.pub``) in a directory."""
    import asyncssh

    directory = tmp_path_factory.mktemp("ssh-key")
    key = asyncssh.generate_private_key("ssh-ed25519", comment="clore-tests")
    (directory / "id_ed25519").write_bytes(key.export_private_key("openssh"))
    (directory / "id_ed25519").chmod(0o600)
    (directory / "id_ed25519.pub").write_bytes(key.export_public_key("openssh"))
    return directory


@pytest.fixture(autouse=True)
def default_ssh_key(
    request: pytest.FixtureRequest, session_key_pair: Path, monkeypatch: pytest.MonkeyPatch
) -> Path | None:
    """``~/.ssh/id_ed25519(.pub)`` in the test's home (none with ``no_default_key``);
    no ssh-agent and no ``$CLORE_SSH_KEY`` from the environment running the tests."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("CLORE_SSH_KEY", raising=False)
    if request.node.get_closest_marker("no_default_key") is not None:
        return None
    ssh = Path(os.environ["HOME"]) / ".ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in ("id_ed25519", "id_ed25519.pub"):
        shutil.copy(session_key_pair / name, ssh / name)
    (ssh / "id_ed25519").chmod(0o600)
    return ssh / "id_ed25519.pub"


@pytest.fixture
def run(sandbox: Sandbox, sandbox_clock: ManualClock) -> Iterator[Cli]:  # noqa: F811
    """``run("market", "gpu=4090")`` -> click Result; ``run.json(...)`` -> decoded JSON."""
    with sandbox.client() as client:
        yield Cli(sandbox, sandbox_clock, client)


@pytest.fixture
def other_user(sandbox: Sandbox) -> Iterator[Callable[..., Clore]]:  # noqa: F811
    """Clients of additional funded users (rivals for spot bids and servers)."""
    made: list[Clore] = []

    def make(name: str = "rival") -> Clore:
        key, _ = sandbox.create_user(name, {"bitcoin": 1.0, "CLORE-Blockchain": 1e6})
        client = sandbox.client(api_key=key)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
