"""One running machine's state, shared by its SSH server, sessions and relays: the spec,
its paths, environment, processes, open connections, the order's command and its log.

Lives on the machines' event loop thread; nothing here is thread-safe on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Coroutine
from typing import IO, TYPE_CHECKING, Any

from clore.sandbox.machines.isolation import READY, Isolation, parse_info
from clore.sandbox.machines.layout import Layout
from clore.sandbox.machines.procs import ProcessTable
from clore.sandbox.machines.spec import MachineSpec

if TYPE_CHECKING:
    import asyncssh

__all__ = ["Runtime"]

_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CLIENT_ENV = ("LANG", "LANGUAGE")
_INIT_TIMEOUT = 10.0


class Runtime:
    """What one order's machine is made of while it runs."""

    def __init__(
        self, spec: MachineSpec, layout: Layout, isolation: Isolation, log_limit: int
    ) -> None:
        self.spec = spec
        self.order_id = spec.order_id
        self.layout = layout
        self.isolation = isolation
        self.procs = ProcessTable(secrets.token_hex(8))
        # Under bubblewrap: how to enter the machine, known once its init has started.
        self._enter: list[str] = []
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.relayed: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.log_limit = log_limit
        self.base_env = self._base_env()

    def _base_env(self) -> dict[str, str]:
        layout, spec = self.layout, self.spec
        env = {
            "HOME": layout.home_inside,
            "PWD": layout.home_inside,
            "USER": "root",
            "LOGNAME": "root",
            "SHELL": self.shell,
            "LANG": "C.UTF-8",
            "PATH": f"{layout.bin_inside}:{_SYSTEM_PATH}",
            "CLORE_SANDBOX_ORDER_ID": str(spec.order_id),
            "CLORE_SANDBOX_DIR": layout.run_inside,
            "CLORE_SANDBOX_MEMINFO": f"{layout.run_inside}/meminfo",
            "CLORE_SANDBOX_CPUS": str(spec.cpus or 1),
        }
        env.update(spec.env)
        # The order may set its own PATH (images do); nvidia-smi stays findable, as the
        # NVIDIA container runtime puts it in /usr/bin whatever PATH says.
        if layout.bin_inside not in env["PATH"].split(":"):
            env["PATH"] = f"{layout.bin_inside}:{env['PATH']}"
        return env

    def session_env(self, process: asyncssh.SSHServerProcess[bytes]) -> dict[str, str]:
        """The environment of one SSH session (what sshd would add to the machine's)."""
        env = dict(self.base_env)
        conn = process.channel.get_connection()
        peer = conn.get_extra_info("peername") or ("127.0.0.1", 0)
        local = conn.get_extra_info("sockname") or ("127.0.0.1", 22)
        env["SSH_CLIENT"] = f"{peer[0]} {peer[1]} {local[1]}"
        env["SSH_CONNECTION"] = f"{peer[0]} {peer[1]} {local[0]} {local[1]}"
        for key, value in process.env.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            text = value.decode() if isinstance(value, bytes) else str(value)
            if (name in _CLIENT_ENV or name.startswith("LC_")) and "\0" not in text:
                env[name] = text
        return env

    async def boot(self) -> None:
        """Start the machine (its init, under bubblewrap), then the order's command."""
        if self.procs.closed:
            return  # stopped before it booted
        try:
            if self.isolation.isolated:
                self._enter = self.isolation.enter_argv(await self._start_init())
            self.ready.set_result(None)
        except (OSError, asyncio.TimeoutError) as exc:
            self.ready.set_exception(exc)
            self.ready.exception()  # retrieved: sessions report it themselves
            with open(self.layout.log, "ab") as handle:
                handle.write(f"[sandbox] the machine did not start: {exc}\n".encode())
            return
        await self.start_command()

    async def _start_init(self) -> int:
        read, write = os.pipe()
        try:
            with open(self.layout.log, "ab") as errors:
                init = await self.procs.spawn(
                    self.isolation.init_argv(self.layout, write),
                    env=self.base_env,
                    cwd=str(self.layout.home),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=errors,
                    pass_fds=(write,),
                )
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        loop = asyncio.get_running_loop()
        info = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(info), os.fdopen(read, "rb", buffering=0)
        )
        try:
            data = b""
            while (pid := parse_info(data)) is None:
                chunk = await asyncio.wait_for(info.read(4096), _INIT_TIMEOUT)
                if not chunk:
                    raise OSError("bubblewrap exited before the machine started")
                data += chunk
        finally:
            transport.close()
        assert init.stdout is not None
        line = await asyncio.wait_for(init.stdout.readline(), _INIT_TIMEOUT)
        if line.decode(errors="replace").strip() != READY:
            raise OSError("bubblewrap exited before the machine started")
        return pid

    async def spawn(
        self,
        argv: list[str],
        env: dict[str, str],
        *,
        stdin: int | IO[Any] | None,
        stdout: int | IO[Any] | None,
        stderr: int | IO[Any] | None,
        prefix: list[str] | None = None,
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` inside the machine (``prefix`` runs outside, before entering)."""
        await asyncio.shield(self.ready)
        process = await self.procs.spawn(
            [*(prefix or []), *self._enter, *argv],
            env=env,
            cwd=str(self.layout.home),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
        )
        self.track(self._reap(process))
        return process

    async def _reap(self, process: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(Exception):
            await process.wait()
        self.procs.reaped(process)

    def track(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this machine (cancelled when it stops)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def start_command(self) -> None:
        """Start the order's ``command`` with its output going to the order's log."""
        if not self.spec.command:
            return
        child = await self.spawn(
            ["/bin/sh", "-c", self.spec.command],
            dict(self.base_env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert child.stdout is not None
        self.track(self._keep_log(child.stdout))

    async def _keep_log(self, stream: asyncio.StreamReader) -> None:
        # The log keeps the newest output: past log_limit bytes its older half is dropped,
        # so a chatty command cannot fill the disk.
        path = self.layout.log
        handle = open(path, "ab")  # noqa: SIM115 - reopened after each truncation
        try:
            size = handle.tell()
            while True:
                data = await stream.read(65536)
                if not data:
                    return
                handle.write(data)
                handle.flush()
                size += len(data)
                if size > self.log_limit:
                    handle.close()
                    size = _keep_tail(path, self.log_limit // 2)
                    handle = open(path, "ab")  # noqa: SIM115
        finally:
            handle.close()


def _keep_tail(path: os.PathLike[str], keep: int) -> int:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - keep))
        tail = handle.read()
    cut = tail.find(b"\n")
    tail = tail[cut + 1 :] if 0 <= cut < len(tail) - 1 else tail
    with open(path, "wb") as handle:
        handle.write(b"[log truncated]\n" + tail)
    return len(tail) + 16
