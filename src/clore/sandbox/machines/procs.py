"""Starting an order's processes and killing every one of them when the order ends.

Each process starts in a session (and process group) of its own, with the machine's
marker variable ``CLORE_SANDBOX_MACHINE=<token>`` in its environment. ``kill_all`` kills
the groups whose leaders are still ours, then every process on the host whose initial
environment carries the marker (found through ``/proc``), twice, so children that left
their group or forked meanwhile go too. Under bubblewrap the PID namespace dies with its
first process as well. A process that both left its group and cleared its environment
survives an unconfined machine's stop (docs/sandbox.md, Machines).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from typing import IO, Any

__all__ = ["MARKER", "ProcessTable"]

#: The environment variable that marks an order's processes.
MARKER = "CLORE_SANDBOX_MACHINE"


class ProcessTable:
    """The processes one machine started (live leaders only; zombies are reaped)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._needle = f"{MARKER}={token}".encode()
        self._live: dict[int, asyncio.subprocess.Process] = {}
        self.closed = False

    async def spawn(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: str,
        stdin: int | IO[Any] | None,
        stdout: int | IO[Any] | None,
        stderr: int | IO[Any] | None,
        pass_fds: tuple[int, ...] = (),
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` in a new session; it is killed by ``kill_all``."""
        if self.closed:
            raise ProcessLookupError("the machine has stopped")
        process = await asyncio.create_subprocess_exec(
            *argv,
            env={**env, MARKER: self.token},
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        self._live[process.pid] = process
        return process

    def reaped(self, process: asyncio.subprocess.Process) -> None:
        """Forget a process whose exit status has been collected."""
        self._live.pop(process.pid, None)

    @property
    def live(self) -> int:
        """How many processes started here have not exited."""
        return sum(p.returncode is None for p in self._live.values())

    async def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every process started here to be reaped."""
        waits = [asyncio.ensure_future(p.wait()) for p in self._live.values()]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for waiter in pending:
                waiter.cancel()

    def signal_group(self, process: asyncio.subprocess.Process, signum: int) -> None:
        """Send ``signum`` to the group of one of our (unreaped) processes."""
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signum)

    def kill_all(self) -> None:
        """SIGKILL everything this machine started; refuse to start more."""
        self.closed = True
        for process in list(self._live.values()):
            # An unreaped leader's pid cannot have been reused, so its group is ours.
            self.signal_group(process, signal.SIGKILL)
        for _ in range(2):
            for pid in self.marked():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def marked(self) -> list[int]:
        """Pids of the host's processes carrying this machine's marker."""
        me = os.getpid()
        found: list[int] = []
        try:
            entries = os.listdir("/proc")
        except OSError:
            return found
        for entry in entries:
            if not entry.isdigit() or int(entry) == me:
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if self._needle in data.split(b"\0"):
                found.append(int(entry))
        return found
