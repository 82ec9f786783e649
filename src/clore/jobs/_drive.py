"""Running the runner's coroutines from sync code, and telling whether a runner lives.

``drive`` runs a coroutine in an event loop of its own and turns the first Ctrl-C into a
call (the job's cooperative interrupt), restoring the previous handler so a second
Ctrl-C raises ``KeyboardInterrupt`` as usual; it refuses to run inside a running loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from clore._holder import Holder, is_gone, this_process
from clore.jobs.records import JobRecord

__all__ = ["drive", "me", "runner_alive"]

T = TypeVar("T")


def me() -> str:
    """This process, as a stop request names it."""
    return f"pid {os.getpid()} on {socket.gethostname() or '?'}"


def drive(
    coroutine: Callable[[], Coroutine[Any, Any, T]], interrupt: Callable[[], None] | None = None
) -> T:
    """Run ``coroutine`` in a loop of its own; the first Ctrl-C calls ``interrupt`` (in
    the loop), a second one raises ``KeyboardInterrupt`` as usual (without ``interrupt``,
    the first one does)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("run_job() cannot run inside an event loop: await arun_job() instead")
    loop = asyncio.new_event_loop()
    installed = False
    previous: Any = None
    if interrupt is not None and threading.current_thread() is threading.main_thread():

        def on_sigint(signum: int, frame: object) -> None:
            signal.signal(
                signal.SIGINT, previous if callable(previous) else signal.default_int_handler
            )
            loop.call_soon_threadsafe(interrupt)

        previous = signal.signal(signal.SIGINT, on_sigint)
        installed = True
    try:
        return loop.run_until_complete(coroutine())
    finally:
        if installed:
            signal.signal(signal.SIGINT, previous)
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def runner_alive(record: JobRecord) -> bool | None:
    """Whether the job's runner process still runs: True, False, or None when it cannot
    be told from here (another machine or container)."""
    holder = Holder.from_json(record.runner)
    if holder is None:
        return False
    if is_gone(holder):
        return False
    here = this_process()
    if holder.host != here.host or holder.pidns != here.pidns:
        return None
    return True
