"""Reaching a rental over SSH: ``Credentials``, ``Target``, ``connect`` (a logged-in
asyncssh connection, shared with the job runner) and one exec for verification.

asyncssh (a dependency already) rather than OpenSSH's ``ssh``: one connection carries the
whole probe script, the library gets an async API (the agent server) and a sync one
(``asyncio.run``, for the CLI and the job runner) from the same code, passwords are sent
without an askpass helper or a pseudo-terminal, and every failure arrives as a typed
exception rather than as ``ssh``'s exit code 255 and a message to parse.

Nothing here reads the user's ``~/.ssh/config`` or agent unless told (``agent=True``):
what logs in is exactly the order's credentials. Host keys: with ``known_hosts`` (a file)
the first contact records the key (OpenSSH's ``accept-new``) and later contacts must match
it; without one, the key is not checked (a rental's host key is new with each order).
Passwords and key passphrases never appear in a repr, a log or an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from clore._files import write_atomic
from clore._wire import Order

if TYPE_CHECKING:
    import asyncssh

__all__ = [
    "Credentials",
    "ProbeRun",
    "SshFailure",
    "Target",
    "TargetError",
    "connect",
    "describe",
    "run_probe_command",
    "target_of",
]


@dataclass(frozen=True)
class Credentials:
    """How to log in: ``username`` (``root`` on Clore), the order's ``password`` and/or
    private ``key_files`` (``passphrase`` for encrypted ones), and ``agent`` to also offer
    the keys of the running ssh-agent (``SSH_AUTH_SOCK``)."""

    username: str = "root"
    password: str | None = field(default=None, repr=False)
    key_files: tuple[Path, ...] = ()
    passphrase: str | None = field(default=None, repr=False)
    agent: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_files", tuple(Path(p) for p in self.key_files))
        if not self.password and not self.key_files and not self.agent:
            raise ValueError(
                "credentials: give the order's ssh password, a private key file, or agent=True"
            )


class TargetError(ValueError):
    """The order cannot be reached yet (not provisioned, or port 22 not forwarded)."""


@dataclass(frozen=True)
class Target:
    """Where SSH answers: ``host`` and public ``port`` (and the order, when known)."""

    host: str
    port: int
    order_id: int | None = None


def target_of(order: Order) -> Target:
    """The order's SSH endpoint: its first ``pub_cluster`` host and the public port of
    container port 22; ``TargetError`` while it has none."""
    hosts = order.hosts
    port = order.port_map.get(22)
    if not hosts:
        raise TargetError(f"order {order.id} has no host yet (pub_cluster is empty): wait for it")
    if port is None:
        raise TargetError(
            f"order {order.id} forwards no SSH port (no 22 in tcp_ports): it cannot be verified"
        )
    return Target(hosts[0], port, order.id)


class SshFailure(Exception):
    """The connection or login failed; the message is one line for the ``ssh`` check."""


@dataclass(frozen=True)
class ProbeRun:
    """What one exec gave: its output, exit status, whether it timed out, and timings."""

    stdout: str
    exit_status: int | None
    timed_out: bool
    connect_seconds: float
    run_seconds: float


def _load_keys(credentials: Credentials) -> list[asyncssh.SSHKey]:
    import asyncssh

    keys: list[asyncssh.SSHKey] = []
    for path in credentials.key_files:
        try:
            keys.append(asyncssh.read_private_key(path, credentials.passphrase))
        except FileNotFoundError:
            raise SshFailure(f"private key {path} does not exist") from None
        except asyncssh.KeyEncryptionError:
            if credentials.agent:
                continue  # the agent may hold it unlocked
            raise SshFailure(
                f"private key {path} is encrypted: give its passphrase or load it into ssh-agent"
            ) from None
        except (asyncssh.KeyImportError, OSError, ValueError):
            raise SshFailure(f"private key {path} cannot be read as an SSH private key") from None
    return keys


def _pattern(target: Target) -> str:
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


def _known(known_hosts: Path, target: Target) -> bool:
    import asyncssh

    try:
        text = known_hosts.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    entries = asyncssh.import_known_hosts(text)
    host_keys = entries.match(target.host, "", target.port)[0]
    return bool(host_keys)


def _record(known_hosts: Path, target: Target, key: asyncssh.SSHKey) -> None:
    try:
        old = known_hosts.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = ""
    line = f"{_pattern(target)} {key.export_public_key('openssh').decode().strip()}\n"
    if old and not old.endswith("\n"):
        old += "\n"
    write_atomic(known_hosts, old + line, mode=0o600)


def _describe(exc: BaseException, target: Target, timeout: float) -> str:
    import asyncssh

    where = f"{target.host}:{target.port}"
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"login refused at {where} (the password or key was not accepted)"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return f"the host key of {where} does not match known_hosts (a different machine?)"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"{where} closed the SSH connection: {' '.join(str(exc.reason).split())[:160]}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused at {where}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {target.host}"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return f"no SSH answer from {where} within {timeout:g} s"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or type(exc).__name__}"
    return f"SSH to {where} failed: {type(exc).__name__}"


async def connect(
    target: Target,
    credentials: Credentials,
    *,
    known_hosts: Path | None = None,
    connect_timeout: float = 20.0,
    keepalive_interval: float | None = None,
) -> asyncssh.SSHClientConnection:
    """Log in to ``target`` with exactly ``credentials``; ``SshFailure`` (one line) when the
    connection or the login fails.

    Host keys follow the module's rule: with ``known_hosts`` the first contact records the
    key and later ones must match it; without, the key is not checked.
    ``keepalive_interval`` (seconds) makes a silently dead link fail after three missed
    answers instead of hanging (long sessions: the job runner). The caller closes the
    connection.
    """
    import asyncssh  # here, not at the top: importing clore.rentals stays light

    keys = _load_keys(credentials)
    checked = known_hosts is not None and _known(known_hosts, target)
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                target.host,
                target.port,
                username=credentials.username,
                password=credentials.password or None,
                client_keys=keys or None,
                passphrase=None,
                agent_path=() if credentials.agent else None,
                known_hosts=str(known_hosts) if checked else None,
                config=None,
                connect_timeout=connect_timeout,
                login_timeout=connect_timeout,
                keepalive_interval=keepalive_interval or 0,
                keepalive_count_max=3,
                preferred_auth="publickey,keyboard-interactive,password",
            ),
            timeout=connect_timeout + 1.0,
        )
    except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
        raise SshFailure(_describe(exc, target, connect_timeout)) from None
    if known_hosts is not None and not checked:
        key = conn.get_server_host_key()
        if key is not None:
            try:
                _record(known_hosts, target, key)
            except OSError as exc:
                conn.close()
                raise SshFailure(
                    f"cannot record the host key in {known_hosts}: "
                    f"{exc.strerror or type(exc).__name__}"
                ) from None
    return conn


def describe(exc: BaseException, target: Target, timeout: float) -> str:
    """One line saying why an SSH operation on ``target`` failed (no secrets)."""
    return _describe(exc, target, timeout)


async def run_probe_command(
    target: Target,
    credentials: Credentials,
    command: str,
    *,
    connect_timeout: float,
    run_timeout: float,
    known_hosts: Path | None = None,
) -> ProbeRun:
    """Log in to ``target`` and run ``command`` once; ``SshFailure`` when the login fails.

    ``run_timeout`` bounds the command: on timeout the output so far is returned with
    ``timed_out`` (the connection is closed, which hangs the command up).
    """
    import asyncssh

    started = time.monotonic()
    conn = await connect(
        target, credentials, known_hosts=known_hosts, connect_timeout=connect_timeout
    )
    connected = time.monotonic()
    try:
        try:
            result = await conn.run(command, timeout=run_timeout, stdin=asyncssh.DEVNULL)
        except asyncssh.TimeoutError as exc:
            return ProbeRun(
                stdout=_text(exc.stdout),
                exit_status=None,
                timed_out=True,
                connect_seconds=connected - started,
                run_seconds=time.monotonic() - connected,
            )
        except (OSError, asyncssh.Error) as exc:
            raise SshFailure(_describe(exc, target, connect_timeout)) from None
        return ProbeRun(
            stdout=_text(result.stdout),
            exit_status=result.exit_status,
            timed_out=False,
            connect_seconds=connected - started,
            run_seconds=time.monotonic() - connected,
        )
    finally:
        conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.wait_closed(), timeout=2.0)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""
