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
        "--interval", "10", "--any-quality",  # the market's cheapest, whatever its quality
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


def test_watch_when_alerts_once_and_a_rerun_does_not_repeat_it(run: Cli) -> None:
    """`watch --model 4090 --when available>N`: one history_alert (with hooks' message),
    none from the same command run again (the episode is in its state file), and the
    listings it fetched are in the sandbox's history (one snapshot a minute at most)."""
    # Available whatever the currency they take (`market` lists only those taking BTC).
    listed = run.client.marketplace()
    free = sum(1 for s in listed if not s.rented and s.specs.gpu.endswith("RTX 4090"))
    args = ("watch", "--model", "4090", "--when", f"available>{free - 1}", "--for", "25s")

    def alerts(result: Any) -> list[dict[str, Any]]:
        assert result.exit_code == 0, result.output
        events = [json.loads(line) for line in result.stdout.splitlines()]  # JSON Lines
        return [e for e in events if e["kind"] == "history_alert"]

    first = alerts(run(*args, "--interval", "10", "--json"))
    again = alerts(run(*args, "--interval", "10", "--json"))
    info = run.json("market", "history", "--info")
    ((alert,),) = [[{**e["details"], "message": e["message"]} for e in first]]
    assert (alert["condition"], alert["value"], again) == (
        f"available>{free - 1}",
        float(free),
        [],
    )
    assert alert["message"] == (
        f"available>{free - 1} for model 4090: available {free} > {free - 1}: yes"
    )
    assert info["snapshots"] == 2  # one per run: polls 10 s apart are stored once a minute


def test_watch_when_refuses_bad_conditions_before_any_request(run: Cli) -> None:
    """A malformed --when, --rent without --max-price, and neither --max-price nor --when
    are exit 2 on one line, and nothing is requested."""
    client = Counting(run.client)
    results = [
        run("watch", "--when", "cheap<3", client=client),
        run("watch", "--when", "available>3", "--rent", "--yes", client=client),
        run("watch", "gpu=4090", client=client),
    ]
    assert [(r.exit_code, len(r.stderr.splitlines())) for r in results] == [(2, 1)] * 3
    assert client.calls == []
    assert [r.stderr.split(": ", 2)[2].split(" (")[0] for r in results] == [
        "--when: bad condition 'cheap<3': unknown metric 'cheap'",
        "--rent needs --max-price",
        "give --max-price",
    ]
