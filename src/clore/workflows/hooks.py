"""Event hooks: run a command with the event as JSON on stdin, or POST it to a webhook.

A hook never stops the loop that feeds it: every failure (non-zero exit, timeout, refused
connection, HTTP status >= 300 after the retries) comes back as a ``hook_failed`` event for
the caller to print, and nothing is raised. ``Hooks.dispatch`` runs the hooks of one event
in the calling thread; ``clore.workflows.hook_queue.HookQueue`` runs them on a worker
thread, so that a slow hook cannot delay a poll or a cancel.

Each hook has one overall deadline per event, its ``timeout``, on the real clock:

- a command runs in a session of its own (its own process group); at the deadline the
  whole group is killed, so children it started do not outlive it;
- a webhook's attempts, and the backoff between them (``backoff`` × 2ⁿ seconds), all end
  by the deadline: each attempt gets what is left of it, and a server that keeps sending
  a byte at a time is cut off at the deadline (its socket is shut down), where a per-read
  timeout would wait as long as the bytes keep coming. 4xx answers other than 408/429 are
  not retried, since sending the same body again will not change them.

``abort()`` ends a running hook at once (the loop has ended and its grace is spent).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from clore._clock import Clock
from clore._version import __version__
from clore.market.units import duration
from clore.workflows.events import Event, make_event

if TYPE_CHECKING:
    import httpx

__all__ = ["CommandHook", "Hooks", "WebhookHook"]

#: Kinds never dispatched to hooks: the hooks' own reports (no feedback loop).
HOOK_KINDS = frozenset({"hook_failed", "hook_dropped"})

_ABORTED = "aborted: the loop ended"


def _failed(event: Event, hook: str, target: str, error: str, attempts: int) -> Event:
    return make_event(
        "hooks",
        "hook_failed",
        event.at,
        f"{hook} hook {target!r} failed for {event.kind}: {error}",
        order_id=event.order_id,
        server_id=event.server_id,
        hook=hook,
        target=target,
        error=error,
        attempts=attempts,
        event_kind=event.kind,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # Only while the leader is unreaped: its pid (the group's id) cannot be reused then.
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - no process groups (Windows)
            proc.kill()


def _reap(proc: subprocess.Popen[bytes]) -> bytes:
    """Wait for a killed command; its stderr so far."""
    try:
        _, err = proc.communicate(timeout=2.0)
    except subprocess.TimeoutExpired:
        # Something that left the group still holds a pipe: stop reading it.
        for pipe in (proc.stdin, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        proc.wait()
        return b""
    return err or b""


class CommandHook:
    """Run ``command`` through the shell with the event's JSON on stdin, within ``timeout``.

    The environment also carries ``CLORE_EVENT_KIND`` and ``CLORE_ORDER_ID`` for scripts
    that only need those. Its stdout is discarded; the last line of stderr is reported
    when it fails.
    """

    def __init__(self, command: str, *, timeout: float = 30.0) -> None:
        self.command = command
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running: subprocess.Popen[bytes] | None = None
        self._aborted = False

    def __call__(self, event: Event) -> Event | None:
        env = dict(os.environ)
        env["CLORE_EVENT_KIND"] = event.kind
        env["CLORE_ORDER_ID"] = "" if event.order_id is None else str(event.order_id)
        with self._lock:
            if self._aborted:
                return _failed(event, "command", self.command, _ABORTED, 0)
            try:
                proc = subprocess.Popen(
                    self.command,
                    shell=True,  # the user's own command line, as typed on the CLI
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=env,
                    # Its own process group, so a timeout can end its children too.
                    start_new_session=os.name == "posix",
                )
            except OSError as exc:
                return _failed(event, "command", self.command, str(exc), 1)
            self._running = proc
        try:
            try:
                _, err = proc.communicate(
                    event.to_json_line().encode() + b"\n", timeout=self.timeout
                )
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                _reap(proc)
                error = _ABORTED if self._aborted else f"timed out after {duration(self.timeout)}"
                return _failed(event, "command", self.command, error, 1)
        finally:
            with self._lock:
                self._running = None
        if proc.returncode != 0:
            if self._aborted:
                return _failed(event, "command", self.command, _ABORTED, 1)
            tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or [""]
            error = f"exit status {proc.returncode}" + (f": {tail[0]}" if tail[0] else "")
            return _failed(event, "command", self.command, error, 1)
        return None

    def abort(self) -> None:
        """Kill the running command's process group; later runs report ``aborted``."""
        with self._lock:
            self._aborted = True
            if self._running is not None:
                _kill_group(self._running)


class _Deadline:
    """Shuts an attempt's connection down when the hook's deadline passes (or on abort).

    httpx times each read, not the request: the socket is found through httpcore's
    ``trace`` extension and shut down through a duplicate of it, which also ends a TLS
    handshake or a TLS stream built on it.
    """

    def __init__(self) -> None:
        self.fired = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = None if stream is None else stream.get_extra_info("socket")
        if not isinstance(sock, socket.socket):
            return
        with contextlib.suppress(OSError), self._lock:
            self._socks.append(sock.dup())
        if self.fired.is_set():
            self.fire()

    def fire(self) -> None:
        self.fired.set()
        with self._lock:
            for sock in self._socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            for sock in self._socks:
                sock.close()
            self._socks.clear()


class WebhookHook:
    """POST the event's JSON to ``url``: ``retries`` retries, all within ``timeout`` seconds.

    ``clock`` (for tests) takes the backoff sleeps; without one they are real and end
    early on ``abort()``. The deadline is always on the real clock.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        clock: Clock | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._aborted = threading.Event()
        # Real backoff counts against the deadline; an injected clock's takes no real time.
        self._real_backoff = clock is None
        self._sleep: Callable[[float], object] = (
            clock.sleep if clock is not None else self._aborted.wait
        )
        self._client = client
        self._lock = threading.Lock()
        self._attempt: _Deadline | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx  # only loaded when a webhook is configured

            self._client = httpx.Client(
                timeout=self.timeout,
                headers={"user-agent": f"clore/{__version__} (webhook)"},
                # A new connection per attempt: each one is seen (and can be cut) by
                # its deadline, and webhooks are too rare to gain from keep-alive.
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._client

    def _post(self, body: bytes, headers: dict[str, str], left: float) -> httpx.Response:
        watch = _Deadline()
        timer = threading.Timer(left, watch.fire)
        timer.daemon = True
        with self._lock:
            self._attempt = watch
            if self._aborted.is_set():
                watch.fire()
        timer.start()
        try:
            return self._http().post(
                self.url,
                content=body,
                headers=headers,
                timeout=left,
                extensions={"trace": watch.trace},
            )
        finally:
            timer.cancel()
            with self._lock:
                self._attempt = None
            watch.close()

    def __call__(self, event: Event) -> Event | None:
        import httpx

        deadline = time.monotonic() + self.timeout
        late = f"no answer within the deadline of {duration(self.timeout)}"
        body = event.to_json_line().encode()
        headers = {"content-type": "application/json", "x-clore-event": event.kind}
        error = ""
        attempts = 0
        for attempt in range(self.retries + 1):
            if attempt:
                pause = self.backoff * 2 ** (attempt - 1)
                if self._real_backoff and time.monotonic() + pause >= deadline:
                    error += f" (no time left for a retry within {duration(self.timeout)})"
                    break
                self._sleep(pause)
            if self._aborted.is_set():
                error = _ABORTED
                break
            left = deadline - time.monotonic()
            if left <= 0:
                error = late
                break
            attempts += 1
            try:
                reply = self._post(body, headers, left)
            except httpx.HTTPError as exc:
                if self._aborted.is_set():
                    error = _ABORTED
                    break
                if time.monotonic() >= deadline:
                    error = late
                    break
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if reply.status_code < 300:
                return None
            error = f"HTTP {reply.status_code}"
            if 400 <= reply.status_code < 500 and reply.status_code not in (408, 429):
                break
        return _failed(event, "webhook", self.url, error, attempts)

    def abort(self) -> None:
        """Cut the running attempt and skip the retries left."""
        self._aborted.set()
        with self._lock:
            if self._attempt is not None:
                self._attempt.fire()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class Hooks:
    """Several hooks behind one ``dispatch`` that returns the failures as events."""

    def __init__(
        self,
        commands: Sequence[str] = (),
        webhooks: Sequence[str] = (),
        *,
        command_timeout: float = 30.0,
        webhook_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        clock: Clock | None = None,
        kinds: Iterable[str] | None = None,
    ) -> None:
        self.commands = [CommandHook(c, timeout=command_timeout) for c in commands]
        self.webhooks = [
            WebhookHook(u, timeout=webhook_timeout, retries=retries, backoff=backoff, clock=clock)
            for u in webhooks
        ]
        self.kinds = None if kinds is None else set(kinds)
        self._aborted = False

    def __bool__(self) -> bool:
        return bool(self.commands or self.webhooks)

    @property
    def deadline(self) -> float:
        """The longest deadline of one hook (seconds): how long one event's run may take."""
        return max(
            (float(getattr(h, "timeout", 0.0)) for h in [*self.commands, *self.webhooks]),
            default=0.0,
        )

    def wants(self, event: Event) -> bool:
        """Whether ``event`` is run through the hooks (not their own reports; ``kinds``)."""
        if event.kind in HOOK_KINDS:
            return False
        return self.kinds is None or event.kind in self.kinds

    def dispatch(self, event: Event) -> list[Event]:
        """Run every hook for ``event`` in this thread (hook reports are not dispatched)."""
        if not self.wants(event):
            return []
        failures: list[Event] = []
        hooks: list[Callable[[Event], Event | None]] = [*self.commands, *self.webhooks]
        for hook in hooks:
            if self._aborted:
                target = str(getattr(hook, "command", getattr(hook, "url", repr(hook))))
                failures.append(_failed(event, "hook", target, f"not run: {_ABORTED}", 0))
                continue
            try:
                failed = hook(event)
            except Exception as exc:  # a hook must never stop the monitor
                failed = _failed(event, "hook", repr(hook), repr(exc), 1)
            if failed is not None:
                failures.append(failed)
        return failures

    def abort(self) -> None:
        """End the running hooks now and skip the rest (safe from another thread)."""
        self._aborted = True
        for hook in [*self.commands, *self.webhooks]:
            stop = getattr(hook, "abort", None)
            if callable(stop):
                stop()

    def close(self) -> None:
        for hook in self.webhooks:
            hook.close()
