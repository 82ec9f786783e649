"""Event hooks: run a command with the event as JSON on stdin, or POST it to a webhook.

A hook never stops the loop that feeds it: every failure (non-zero exit, timeout, refused
connection, HTTP status >= 300 after the retries) comes back as a ``hook_failed`` event for
the caller to print, and nothing is raised. Webhooks retry ``retries`` times with
exponential backoff (``backoff`` × 2ⁿ seconds, on the injected clock); 4xx answers other
than 408/429 are not retried, since sending the same body again will not change them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from clore._clock import Clock, SystemClock
from clore._version import __version__
from clore.workflows.events import Event, make_event

if TYPE_CHECKING:
    import httpx

__all__ = ["CommandHook", "Hooks", "WebhookHook"]


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


class CommandHook:
    """Run ``command`` through the shell with the event's JSON on stdin.

    The environment also carries ``CLORE_EVENT_KIND`` and ``CLORE_ORDER_ID`` for scripts
    that only need those.
    """

    def __init__(self, command: str, *, timeout: float = 30.0) -> None:
        self.command = command
        self.timeout = timeout

    def __call__(self, event: Event) -> Event | None:
        env = dict(os.environ)
        env["CLORE_EVENT_KIND"] = event.kind
        env["CLORE_ORDER_ID"] = "" if event.order_id is None else str(event.order_id)
        try:
            done = subprocess.run(
                self.command,
                shell=True,  # the user's own command line, as typed on the CLI
                input=event.to_json_line().encode() + b"\n",
                env=env,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return _failed(event, "command", self.command, f"timed out after {self.timeout:g} s", 1)
        except OSError as exc:
            return _failed(event, "command", self.command, str(exc), 1)
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            error = f"exit status {done.returncode}" + (f": {tail[0]}" if tail[0] else "")
            return _failed(event, "command", self.command, error, 1)
        return None


class WebhookHook:
    """POST the event's JSON to ``url`` with a per-attempt ``timeout`` and ``retries``."""

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
        self.clock = clock or SystemClock()
        self._client = client

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx  # only loaded when a webhook is configured

            self._client = httpx.Client(
                timeout=self.timeout, headers={"user-agent": f"clore/{__version__} (webhook)"}
            )
        return self._client

    def __call__(self, event: Event) -> Event | None:
        import httpx

        body = event.to_json_line().encode()
        headers = {"content-type": "application/json", "x-clore-event": event.kind}
        error = ""
        attempts = 0
        for attempt in range(self.retries + 1):
            if attempt:
                self.clock.sleep(self.backoff * 2 ** (attempt - 1))
            attempts += 1
            try:
                reply = self._http().post(
                    self.url, content=body, headers=headers, timeout=self.timeout
                )
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if reply.status_code < 300:
                return None
            error = f"HTTP {reply.status_code}"
            if 400 <= reply.status_code < 500 and reply.status_code not in (408, 429):
                break
        return _failed(event, "webhook", self.url, error, attempts)

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

    def __bool__(self) -> bool:
        return bool(self.commands or self.webhooks)

    def dispatch(self, event: Event) -> list[Event]:
        """Run every hook for ``event`` (hook failures themselves are not dispatched)."""
        if event.kind == "hook_failed" or (self.kinds is not None and event.kind not in self.kinds):
            return []
        failures: list[Event] = []
        hooks: list[Callable[[Event], Event | None]] = [*self.commands, *self.webhooks]
        for hook in hooks:
            try:
                failed = hook(event)
            except Exception as exc:  # a hook must never stop the monitor
                failed = _failed(event, "hook", repr(hook), repr(exc), 1)
            if failed is not None:
                failures.append(failed)
        return failures

    def close(self) -> None:
        for hook in self.webhooks:
            hook.close()
