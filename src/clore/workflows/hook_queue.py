"""Run event hooks beside a loop, never in its way: a bounded queue and one worker thread.

A loop that polls, guards or cancels hands each event to ``HookQueue.submit`` and goes on
at once; the worker runs the hooks (``clore.workflows.hooks.Hooks``) one event after the
other, each hook within its own deadline. When ``size`` events already wait, a new one
is not queued: a ``hook_dropped`` event reports it, so a hook slower than the events it
gets costs notifications, never a poll or a cancel.

``close`` is called when the loop ends: the events still waiting get ``grace`` seconds in
all (by default one hook deadline); then the running hook is aborted (a command's process
group killed, a webhook's connection cut) and what is left is reported as dropped.

Reports (``hook_failed``, ``hook_dropped``) go to the ``report`` callback, from the worker
thread or from the caller of ``submit``: it must be thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from clore.workflows.events import Event, make_event
from clore.workflows.hooks import Hooks

__all__ = ["HookQueue", "dropped_event"]

#: Events that may wait for the hooks: well above any burst a loop yields in one poll.
DEFAULT_SIZE = 100


def dropped_event(event: Event, reason: str, queued: int) -> Event:
    """A ``hook_dropped`` report: ``event``'s hooks will not run, and why."""
    return make_event(
        "hooks",
        "hook_dropped",
        event.at,
        f"hooks not run for {event.kind}: {reason}",
        order_id=event.order_id,
        server_id=event.server_id,
        reason=reason,
        event_kind=event.kind,
        queued=queued,
    )


class HookQueue:
    """``hooks`` run on a worker thread for each submitted event (see the module docstring)."""

    def __init__(
        self, hooks: Hooks, report: Callable[[Event], None], *, size: int = DEFAULT_SIZE
    ) -> None:
        self.hooks = hooks
        self.report = report
        self.size = size
        self._pending: deque[Event] = deque()
        self._cond = threading.Condition()
        self._busy = False  # the worker is running an event's hooks
        self._closing = False  # no more events; drain what waits
        self._stopped = False  # the grace is spent: drop what waits
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, event: Event) -> None:
        """Queue ``event`` for the hooks and return at once (a full queue drops it)."""
        if not self.hooks.wants(event):
            return
        with self._cond:
            if self._closing:
                drop: str | None = "the loop has ended"
            elif len(self._pending) >= self.size:
                drop = f"the hook queue is full ({self.size} events wait for slow hooks)"
            else:
                drop = None
                self._pending.append(event)
                self._start()
                self._cond.notify_all()
            queued = len(self._pending)
        if drop is not None:
            self.report(dropped_event(event, drop, queued))

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="clore-hooks", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        left: list[Event] = []
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if self._stopped:
                    left = list(self._pending)
                    self._pending.clear()
                if not self._pending:
                    self._busy = False
                    self._cond.notify_all()
                    break
                event = self._pending.popleft()
                self._busy = True
            for failed in self.hooks.dispatch(event):
                self.report(failed)
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        for event in left:
            self.report(dropped_event(event, "the loop ended before its hooks ran", 0))

    def close(self, grace: float | None = None) -> None:
        """Wait up to ``grace`` seconds (default: the hooks' deadline) for the queued
        hooks, abort the rest, and close the hooks. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = self._closing = True
            self._cond.notify_all()
        try:
            self._drain(self.hooks.deadline if grace is None else grace)
        except KeyboardInterrupt:
            self._abort()  # a second Ctrl-C while waiting: stop now, kill what runs
            raise
        finally:
            if self._thread is not None:
                self._thread.join(timeout=5.0)
            self.hooks.close()

    def _drain(self, grace: float) -> None:
        end = time.monotonic() + grace
        with self._cond:
            while (self._pending or self._busy) and (wait := end - time.monotonic()) > 0:
                self._cond.wait(wait)
            unfinished = bool(self._pending or self._busy)
        if unfinished:
            self._abort()

    def _abort(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self.hooks.abort()
