"""One SSH session's process: ``exec`` runs ``/bin/sh -c COMMAND``, ``shell`` the
machine's shell, with a pseudo-terminal when the client asked for one.

Pipes behave like OpenSSH's sshd: the exit status is sent once the process has exited
and its stdout and stderr reached end of file. With a terminal the session ends when the
shell exits (output drained briefly, then the terminal hangs up, so its background jobs
get SIGHUP). Window changes, signals and breaks from the client reach the process; a
client that goes away hangs the process up.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import struct
import termios
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncssh

if TYPE_CHECKING:
    from clore.sandbox.machines.runtime import Runtime

__all__ = ["serve_process"]

log = logging.getLogger("clore.sandbox.machines")

_CHUNK = 65536
_PTY_DRAIN = 0.2
# Wrapped around a terminal session's command outside any isolation: the new session
# leader opens the terminal by name, which makes it the controlling terminal (job
# control works), then execs the real command.
_CTTY = 'exec 0<>"$0" 1>&0 2>&0 && exec "$@"'


async def serve_process(runtime: Runtime, process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Run what the client asked for and send its exit status."""
    try:
        if process.subsystem is not None:
            process.stderr.write(f"subsystem {process.subsystem!r} is not served\n".encode())
            process.exit(1)
            return
        command = process.command
        argv = [runtime.shell] if command is None else ["/bin/sh", "-c", command]
        env = runtime.session_env(process)
        if process.term_type is not None:
            status = await _run_pty(runtime, process, argv, env)
        else:
            status = await _run_pipes(runtime, process, argv, env)
        _finish(process, status)
    except (ProcessLookupError, OSError) as exc:
        # The machine stopped meanwhile, or the command could not start.
        log.warning("order %s: a session could not run: %s", runtime.order_id, exc)
        with contextlib.suppress(Exception):
            process.stderr.write(f"{exc.strerror or exc or type(exc).__name__}\n".encode())
            process.exit(255)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("order %s: session failed", runtime.order_id)
        with contextlib.suppress(Exception):
            process.exit(255)


def _finish(process: asyncssh.SSHServerProcess[bytes], status: int | None) -> None:
    if process.channel.is_closing():
        return
    if status is None or status >= 0:
        process.exit(0 if status is None else status)
    else:
        name = signal.Signals(-status).name.removeprefix("SIG")
        process.exit_with_signal(name)


async def _pump(read: Callable[[int], Awaitable[bytes]], write: Callable[[bytes], Any]) -> None:
    """Copy until end of file (a terminal's EIO counts as one) or a closed channel."""
    while True:
        try:
            data = await read(_CHUNK)
        except OSError:
            return
        if not data:
            return
        await write(data)


async def _feed(
    runtime: Runtime,
    process: asyncssh.SSHServerProcess[bytes],
    child: asyncio.subprocess.Process,
    write: Callable[[bytes], Awaitable[None]],
    eof: Callable[[], None] | None,
    master: int | None,
) -> None:
    """Client input to the process; signals and window changes on the way."""
    while True:
        try:
            data = await process.stdin.read(_CHUNK)
        except asyncssh.TerminalSizeChanged as change:
            if master is not None:
                _set_size(master, change.term_size)
            continue
        except asyncssh.BreakReceived:
            _signal(runtime, child, master, signal.SIGINT)
            continue
        except asyncssh.SignalReceived as received:
            signum = getattr(signal, f"SIG{received.signal}", None)
            if signum is not None:
                _signal(runtime, child, master, signum)
            continue
        except (asyncssh.Error, OSError):
            return
        if not data:
            if eof is not None:
                eof()
            return
        try:
            await write(data)
        except (OSError, RuntimeError):
            return  # the process closed its input; the rest is dropped, as sshd does


def _signal(
    runtime: Runtime, child: asyncio.subprocess.Process, master: int | None, signum: int
) -> None:
    if master is not None:
        with contextlib.suppress(OSError):
            os.killpg(os.tcgetpgrp(master), signum)
            return
    runtime.procs.signal_group(child, signum)


async def _until_exit_or_hangup(
    process: asyncssh.SSHServerProcess[bytes], child: asyncio.subprocess.Process
) -> bool:
    """Wait for the child; True when it exited, False when the client went away first."""
    exited = asyncio.ensure_future(child.wait())
    closed = asyncio.ensure_future(process.channel.wait_closed())
    try:
        await asyncio.wait({exited, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
    if exited.done():
        return True
    exited.cancel()
    return False


async def _run_pipes(
    runtime: Runtime,
    process: asyncssh.SSHServerProcess[bytes],
    argv: list[str],
    env: dict[str, str],
) -> int | None:
    child = await runtime.spawn(
        argv,
        env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    stdin = child.stdin

    async def to_child(data: bytes) -> None:
        stdin.write(data)
        await stdin.drain()

    def close_stdin() -> None:
        with contextlib.suppress(OSError, RuntimeError):
            stdin.close()

    async def to_stdout(data: bytes) -> None:
        process.stdout.write(data)
        await process.stdout.drain()

    async def to_stderr(data: bytes) -> None:
        process.stderr.write(data)
        await process.stderr.drain()

    feeder = asyncio.ensure_future(_feed(runtime, process, child, to_child, close_stdin, None))
    pumps = asyncio.gather(_pump(child.stdout.read, to_stdout), _pump(child.stderr.read, to_stderr))
    pumps.add_done_callback(_retrieve)
    try:
        if not await _until_exit_or_hangup(process, child):
            runtime.procs.signal_group(child, signal.SIGHUP)
            return None
        with contextlib.suppress(Exception):
            await pumps
        return child.returncode
    finally:
        feeder.cancel()
        pumps.cancel()
        close_stdin()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _set_size(master: int, size: tuple[int, int, int, int]) -> None:
    cols, rows, xpixel, ypixel = size
    with contextlib.suppress(OSError, struct.error):
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, xpixel, ypixel))


async def _run_pty(
    runtime: Runtime,
    process: asyncssh.SSHServerProcess[bytes],
    argv: list[str],
    env: dict[str, str],
) -> int | None:
    loop = asyncio.get_running_loop()
    master, slave = os.openpty()
    # Each transport owns a dup of the terminal and is closed as a transport: closing its
    # file behind asyncio's back would leave the fd number registered with the event
    # loop, and the next file to get that number would never be read.
    transports: list[asyncio.BaseTransport] = []
    try:
        _set_size(master, process.term_size)
        env["TERM"] = process.term_type or "xterm"
        child = await runtime.spawn(
            argv,
            env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            prefix=["/bin/sh", "-c", _CTTY, os.ttyname(slave)],
        )
        os.close(slave)
        slave = -1
        reader = asyncio.StreamReader(loop=loop)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), _dup_file(master, "rb")
        )
        transports.append(read_transport)
        write_transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(loop=loop), _dup_file(master, "wb")
        )
        transports.append(write_transport)
        writer = asyncio.StreamWriter(write_transport, protocol, None, loop)

        async def to_child(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        async def to_stdout(data: bytes) -> None:
            process.stdout.write(data)
            await process.stdout.drain()

        feeder = asyncio.ensure_future(_feed(runtime, process, child, to_child, None, master))
        pump = asyncio.ensure_future(_pump(reader.read, to_stdout))
        try:
            if not await _until_exit_or_hangup(process, child):
                return None  # closing the terminal below hangs the session up
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(pump), _PTY_DRAIN)
            return child.returncode
        finally:
            feeder.cancel()
            pump.cancel()
    finally:
        if slave >= 0:
            os.close(slave)
        for transport in transports:
            transport.close()
        os.close(master)


def _dup_file(fd: int, mode: str) -> Any:
    return os.fdopen(os.dup(fd), mode, buffering=0)
