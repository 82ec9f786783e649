"""Which process runs a file database's machines, and how the others reach it.

A machine is a process tree and open sockets: it lives as long as the process that
started it. The CLI's ``--sandbox`` mode is one process per command, so its machines
cannot live there. One process per database runs them instead — the one holding the
lock ``ROOT/host.lock`` (ROOT is the database's machines directory, see
``fleet.machines_root``): a ``clore sandbox serve`` on that database, or a background
``python -m clore.sandbox.host --db PATH``, which any other process using the database
starts when an order first needs a machine. The holder settles the database four times a
second, keeps every order's machine in step with it, and (the background host) exits once
no order has needed a machine for ``--idle`` seconds or its database is gone.

Other processes reach the holder on a unix socket (``ROOT/host.sock``, mode 0600, in the
0700 machines directory; a path too long for a socket moves to ``$TMPDIR/clore-UID/``).
Each request and answer is one JSON object on one line: ``{"op": "sync"}`` (reconcile
now, answered when done), ``{"op": "access", "order", "fault", "seconds"}``,
``{"op": "info"}``, ``{"op": "exit"}`` (a ``serve`` taking over), ``{"op": "ping"}``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["HostLock", "HostServer", "call_host", "main", "socket_path", "spawn_host"]

log = logging.getLogger("clore.sandbox.host")

_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
_SPAWN_WAIT = 20.0
_ANSWER_TIMEOUT = 30.0
_MAX_REQUEST = 1 << 20

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def socket_path(root: Path) -> Path:
    """Where the host of the machines under ``root`` listens."""
    path = root / "host.sock"
    if len(os.fsencode(str(path))) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(str(root.resolve()))).hexdigest()[:24]
    directory = Path(tempfile.gettempdir()) / f"clore-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    if directory.stat().st_uid != os.getuid() or directory.stat().st_mode & 0o077:
        raise OSError(f"{directory} is not a private directory of this user")
    return directory / f"{digest}.sock"


class HostLock:
    """The exclusive right to run the machines under ``root`` (``root/host.lock``)."""

    def __init__(self, root: Path) -> None:
        self.path = root / "host.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this process holds it."""
        if self._fd is not None:
            return True
        import fcntl

        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up (closing the file releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class HostServer:
    """Answers other processes' requests on the host socket, one at a time, in a thread."""

    def __init__(self, root: Path, handler: Handler) -> None:
        self.path = socket_path(root)
        self._handler = handler
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a dead host's socket (we hold the lock, so it is dead)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(16)
        self._sock = sock
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="clore-sandbox-host", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(_ANSWER_TIMEOUT)
                try:
                    request = json.loads(_read_line(conn))
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                    answer = self._handler(request)
                except Exception as exc:  # one bad request must not stop the host
                    log.debug("host request failed: %s", exc)
                    answer = {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else ""}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(answer).encode() + b"\n")

    def close(self) -> None:
        """Stop answering and remove the socket."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._thread.join(timeout=5)


def _read_line(conn: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") or size > _MAX_REQUEST:
            break
    return b"".join(chunks)


def call_host(
    root: Path, request: dict[str, Any], timeout: float = _ANSWER_TIMEOUT
) -> dict[str, Any] | None:
    """Send ``request`` to the host of ``root``'s machines; None when none answers."""
    try:
        path = socket_path(root)
    except OSError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        answer = json.loads(_read_line(sock) or b"null")
    except (OSError, ValueError):
        return None
    finally:
        sock.close()
    return answer if isinstance(answer, dict) else None


def spawn_host(db: Path, root: Path) -> bool:
    """Start a background host for ``db`` (unless one answers) and wait until it does."""
    if call_host(root, {"op": "ping"}, timeout=5) is not None:
        return True
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(root / "host.log", "ab") as errors:
        subprocess.Popen(
            [sys.executable, "-m", "clore.sandbox.host", "--db", str(db)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,  # not killed with the terminal's process group
            close_fds=True,
        )
    deadline = time.monotonic() + _SPAWN_WAIT
    while time.monotonic() < deadline:
        if call_host(root, {"op": "ping"}, timeout=5) is not None:
            return True
        time.sleep(0.02)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m clore.sandbox.host --db PATH [--idle S] [--keep]``: host the machines of
    the database at PATH until none is needed for S seconds or the database is gone."""
    parser = argparse.ArgumentParser(prog="python -m clore.sandbox.host")
    parser.add_argument("--db", required=True, help="the sandbox database file")
    parser.add_argument("--idle", type=float, default=30.0, help="exit after this long idle")
    parser.add_argument("--keep", action="store_true", help="keep stopped orders' directories")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    db = Path(args.db).expanduser()
    if not db.is_file():
        return 0
    from clore.sandbox.fleet import MachineOptions
    from clore.sandbox.service import Sandbox

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with Sandbox(
        db=db, seed=None, rate_limit=False, machines=MachineOptions(mode="local", keep=args.keep)
    ) as sandbox:
        fleet = sandbox.fleet
        if not fleet.start_hosting():
            return 0  # another process hosts them
        fleet.on_exit_request = stop.set
        while not stop.wait(0.5):
            if not db.is_file() or fleet.idle_for() > args.idle:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
