"""Helpers of the machines suite: real OpenSSH clients, keys, snapshot records, waits."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest

from clore.sandbox.machines import Endpoint

SNAPSHOT = (
    Path(__file__).resolve().parents[3]
    / "src"
    / "clore"
    / "sandbox"
    / "data"
    / "marketplace-snapshot-2024.json.gz"
)
#: Real records of the capture: 1x RTX 4090 (450 W, PCIe 4 x16, CUDA 12.2), 2x RTX 4090
#: (350 W each, PCIe 2 x8), 8x RTX 3090 (eight different limits, PCIe 2 x1, CUDA 12.4).
ONE_GPU, TWO_GPUS, EIGHT_GPUS = 25756, 25718, 25769

_T = TypeVar("_T")


@cache
def _records() -> dict[int, dict[str, Any]]:
    with gzip.open(SNAPSHOT, "rt", encoding="utf-8") as handle:
        servers = json.load(handle)["servers"]
    return {server["id"]: server for server in servers}


def snapshot_server(server_id: int) -> dict[str, Any]:
    """The marketplace record of ``server_id`` in the bundled capture."""
    return _records()[server_id]


def require(tool: str) -> str:
    """The path of ``tool``, or skip the test saying it is missing."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (CI installs it with apt-get; see .ci/run)")
    return path


@dataclass(frozen=True)
class KeyPair:
    """A private key file for OpenSSH and its authorized_keys line."""

    path: Path
    public: str
    key: asyncssh.SSHKey


def make_key(directory: Path, name: str = "id_ed25519") -> KeyPair:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = directory / name
    path.write_bytes(key.export_private_key())
    path.chmod(0o600)
    return KeyPair(path, key.export_public_key().decode().strip(), key)


_COMMON = [
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "IdentityAgent=none",
]


class OpenSSH:
    """Runs OpenSSH's ssh, scp, sftp and rsync against one endpoint, as root."""

    def __init__(
        self,
        endpoint: Endpoint,
        workdir: Path,
        *,
        password: str | None = None,
        key: KeyPair | None = None,
    ) -> None:
        assert endpoint.ssh_port is not None
        self.endpoint = endpoint
        self.port = endpoint.ssh_port
        self.env = dict(os.environ)
        self.options = list(_COMMON)
        if key is not None:
            self.options += [
                "-i",
                str(key.path),
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "PreferredAuthentications=publickey",
                "-o",
                "BatchMode=yes",
            ]
        else:
            askpass = workdir / f"askpass-{self.port}"
            askpass.write_text(f"#!/bin/sh\necho '{password or ''}'\n")
            askpass.chmod(0o700)
            self.env.update(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force")
            self.env.setdefault("DISPLAY", ":0")
            self.options += [
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "NumberOfPasswordPrompts=1",
            ]

    def argv(self, tool: str, *args: str) -> list[str]:
        port_flag = "-p" if tool == "ssh" else "-P"
        return [require(tool), *self.options, port_flag, str(self.port), *args]

    def run(
        self, tool: str, *args: str, timeout: float = 30.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(tool, *args),
            env=self.env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ssh(self, command: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("ssh", "root@127.0.0.1", command, **kw)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv("ssh", *args),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def rsync(self, *args: str) -> subprocess.CompletedProcess[str]:
        ssh = " ".join([require("ssh"), *self.options, "-p", str(self.port)])
        return subprocess.run(
            [require("rsync"), "-e", ssh, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def wait_for(check: Callable[[], _T | None], timeout: float = 10.0, step: float = 0.05) -> _T:
    """Poll ``check`` until it returns something (bounded real-time wait for real processes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        time.sleep(step)
