"""Unit tests of the event hooks (commands and webhooks) and of the event JSON schema."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import httpx

from clore._clock import ManualClock
from clore._wire import Order
from clore.workflows.events import DETAILS, Event, make_event
from clore.workflows.hooks import CommandHook, Hooks, WebhookHook

AT = 1_700_000_000.0


def sample() -> Event:
    order = Order(id=5, si=9, price=0.0001, currency="bitcoin")
    return make_event("monitor", "expiring", AT, "order 5 expires", order=order, time_left=60.0)


def test_event_json_has_the_stable_keys() -> None:
    """Every event serialises to one object with the documented keys, ids taken from the order."""
    data = sample().to_json()
    assert list(data) == [
        "v", "source", "kind", "at", "time", "message",
        "order_id", "server_id", "details", "order", "server",
    ]  # fmt: skip
    assert (data["order_id"], data["server_id"], data["time"]) == (5, 9, "2023-11-14T22:13:20.000Z")
    assert json.loads(sample().to_json_line()) == data
    assert set(data["details"]) <= set(DETAILS["expiring"])


def test_a_command_hook_gets_the_event_on_stdin(tmp_path: Path) -> None:
    """--on-event CMD runs CMD with the event JSON on stdin and the kind in the environment."""
    out = tmp_path / "got.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import os, sys\n"
        "open(sys.argv[1], 'w').write(os.environ['CLORE_EVENT_KIND'] + sys.stdin.read())\n"
    )
    cmd = f"{sys.executable} {script} {out}"
    assert CommandHook(cmd)(sample()) is None
    text = out.read_text()
    assert text.startswith("expiring{")
    assert json.loads(text[len("expiring") :])["order_id"] == 5


def test_a_failing_command_is_reported_not_raised() -> None:
    """A command exiting non-zero, or timing out, comes back as a hook_failed event."""
    failed = CommandHook(f"{sys.executable} -c 'import sys; sys.exit(3)'")(sample())
    assert failed is not None and failed.kind == "hook_failed"
    assert failed.details["error"].startswith("exit status 3")
    slow = CommandHook(f"{sys.executable} -c 'import time; time.sleep(5)'", timeout=0.2)(sample())
    assert slow is not None and "timed out" in slow.details["error"]


def test_a_webhook_is_retried_then_succeeds() -> None:
    """A webhook answering 500 is retried with backoff until it accepts the event."""
    answers = iter([500, 503, 200])
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(next(answers))

    clock = ManualClock()
    hook = WebhookHook(
        "http://127.0.0.1:9/hook",
        clock=clock,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert hook(sample()) is None
    assert len(bodies) == 3
    assert json.loads(bodies[0])["kind"] == "expiring"
    assert clock.slept == [0.5, 1.0]


def test_a_down_webhook_yields_hook_failed_after_the_retries() -> None:
    """Nothing listening on the webhook port: failure is reported after 1 + retries attempts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: nothing listens there
    hooks = Hooks(
        webhooks=[f"http://127.0.0.1:{port}/"], retries=2, clock=ManualClock(), webhook_timeout=1.0
    )
    (failed,) = hooks.dispatch(sample())
    assert (failed.kind, failed.details["attempts"]) == ("hook_failed", 3)
    assert failed.details["event_kind"] == "expiring"


def test_hook_failures_are_not_fed_back_to_the_hooks() -> None:
    """A hook_failed event is not dispatched again (no feedback loop)."""
    calls: list[str] = []
    hooks = Hooks(commands=["true"])
    hooks.commands = [lambda e: calls.append(e.kind)]  # type: ignore[list-item]
    hooks.dispatch(make_event("hooks", "hook_failed", AT, "x"))
    assert calls == []
