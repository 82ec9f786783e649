"""``clore watch`` runs hooks for its events, as ``monitor`` and ``guard`` do."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from cli_helpers import Cli

from clore import Clore


class Counting:
    """The client, counting the requests made through it."""

    def __init__(self, client: Clore) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


def test_watch_runs_the_on_event_command_for_each_event(run: Cli, tmp_path: Path) -> None:
    """`watch --on-event CMD` gets every event as JSON on stdin, the match among them."""
    log = tmp_path / "events.jsonl"
    cheapest = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    price = cheapest["price"]["on_demand"]["bitcoin"]
    result = run(
        "watch", "gpu=4090", "gpus=1", "--max-price", f"{price}btc", "--for", "15s",
        "--interval", "10",
        "--on-event", f"cat >> {shlex.quote(str(log))}; echo >> {shlex.quote(str(log))}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    matched = [e["server_id"] for e in events if e["kind"] == "match"]
    assert (cheapest["id"] in matched, events[-1]["kind"]) == (True, "done")


def test_watch_refuses_a_webhook_that_is_not_a_url_before_any_request(run: Cli) -> None:
    """A --webhook that is not http(s) is exit 2 on one line, and nothing is requested."""
    client = Counting(run.client)
    result = run("watch", "--max-price", "1btc", "--webhook", "hooks.example.com", client=client)
    assert (result.exit_code, client.calls) == (2, [])
    assert result.stderr.startswith("clore: error: --webhook: expected an http")
