"""The SSH server of one machine (asyncssh): who may log in, what a session runs, which
forwardings are allowed, and the access faults applied to each new connection.

Only ``root`` logs in, with the order's ``ssh_password`` or a key of its ``ssh_key``
(an authorized_keys text); every other user, password or key is refused the same way.
Sessions run through ``session.serve_process``; SFTP and ``scp -O`` through
``sftp.MachineSFTP``. ``ssh -L`` may reach ``127.0.0.1``/``localhost`` ports only (the
machine's own, as the host's network is shared); remote forwarding, agent and X11
forwarding are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket

import asyncssh

from clore.sandbox.machines.runtime import Runtime
from clore.sandbox.machines.session import serve_process
from clore.sandbox.machines.sftp import MachineSFTP

__all__ = ["AccessFaults", "SSHServerFactory", "authorized_keys"]

log = logging.getLogger("clore.sandbox.machines")

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_LOGIN_TIMEOUT = 60.0
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)


def authorized_keys(text: str | None) -> asyncssh.SSHAuthorizedKeys | None:
    """The keys of an order's ``ssh_key`` (None when it has none that parse)."""
    if not text or not text.strip():
        return None
    lines = []
    for line in text.splitlines():
        # One bad line must not lose the good ones (users paste keys with stray text).
        with contextlib.suppress(ValueError):
            asyncssh.import_authorized_keys(line)
            lines.append(line)
    return asyncssh.import_authorized_keys("\n".join(lines)) if lines else None


class _Server(asyncssh.SSHServer):
    def __init__(
        self, runtime: Runtime, password: str | None, keys: asyncssh.SSHAuthorizedKeys | None
    ) -> None:
        self._runtime = runtime
        self._password = password.encode() if password else None
        self._keys = keys
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._runtime.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._runtime.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        if username == "root" and self._keys is not None and self._conn is not None:
            self._conn.set_authorized_keys(self._keys)
        return True

    def password_auth_supported(self) -> bool:
        return self._password is not None

    def validate_password(self, username: str, password: str) -> bool:
        if self._password is None:
            return False
        given = password.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self._password) and username == "root"

    def public_key_auth_supported(self) -> bool:
        return self._keys is not None

    def kbdint_auth_supported(self) -> bool:
        return False

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        return dest_host in _LOCAL_HOSTS

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False

    def unix_connection_requested(self, dest_path: str) -> bool:
        return False

    def unix_server_requested(self, listen_path: str) -> bool:
        return False


class _QuickAck(asyncssh.SSHServerConnection):
    """asyncssh's server connection, acknowledging each packet at once.

    OpenSSH's client leaves Nagle's algorithm on for non-interactive sessions, so a
    message it sends right after another waits for the server's ACK of the first; a
    server with nothing to send delays that ACK by 40 ms, which happens twice in most
    handshakes. TCP_QUICKACK after every receive sends the ACK at once: logins take
    about half as long. (This is what ``asyncssh.listen`` builds per connection, one
    shared options object included.)
    """

    _sock: socket.socket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sock = transport.get_extra_info("socket")
        super().connection_made(transport)

    def data_received(self, data: bytes, datatype: int | None = None) -> None:
        super().data_received(data, datatype)
        if self._sock is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
            except OSError:
                self._sock = None  # not TCP (or not Linux): nothing to speed up


class AccessFaults:
    """The access fault in force for one machine: ``refuse``, ``delay`` or none."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.seconds = 0.0


class SSHServerFactory:
    """Builds a machine's asyncssh options once and serves each accepted socket."""

    def __init__(self, runtime: Runtime, host_key: asyncssh.SSHKey) -> None:
        self.runtime = runtime
        self.faults = AccessFaults()
        spec = runtime.spec
        keys = authorized_keys(spec.ssh_key)
        if spec.ssh_key and keys is None:
            log.warning("order %s: its ssh_key holds no usable public key", spec.order_id)
        password = spec.ssh_password

        def server() -> _Server:
            return _Server(runtime, password, keys)

        def sftp(chan: asyncssh.SSHServerChannel[bytes]) -> MachineSFTP:
            return MachineSFTP(chan, str(runtime.layout.base))

        self.options = asyncssh.SSHServerConnectionOptions(
            server_host_keys=[host_key],
            server_factory=server,
            process_factory=lambda process: serve_process(runtime, process),
            sftp_factory=sftp,
            allow_scp=True,
            encoding=None,
            agent_forwarding=False,
            x11_forwarding=False,
            login_timeout=_LOGIN_TIMEOUT,
            keepalive_interval=0,
        )

    async def handle(self, sock: socket.socket) -> None:
        """Serve one accepted connection (after the delay fault's seconds, if any)."""
        if self.faults.kind == "delay" and self.faults.seconds > 0:
            # A slow boot: the TCP connection is accepted, the SSH banner comes later.
            await asyncio.sleep(self.faults.seconds)
        loop = asyncio.get_running_loop()
        options = self.options
        try:
            await loop.connect_accepted_socket(lambda: _QuickAck(loop, options), sock)
        except OSError as exc:
            log.debug("order %s: connection lost on arrival: %s", self.runtime.order_id, exc)
            sock.close()

    def drop(self) -> int:
        """Cut every open SSH connection of the machine at once; how many were cut."""
        conns = list(self.runtime.connections)
        for conn in conns:
            conn.abort()
        return len(conns)
