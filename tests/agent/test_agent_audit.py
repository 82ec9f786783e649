"""The audit log: every mutating call as a call line before and a result line after
(tool, masked arguments, quote fingerprint, outcome, order id, cost), JSON Lines with
mode 0600 in data_dir()/agent; read-only calls are not logged; a log that cannot be
written stops the call before anything is rented; no secret ever reaches the file or a
result (the API key, the generated SSH password, the Jupyter token, secret env values)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from clore import Clore
from clore.agent import AgentContext, AuditLog
from clore.rentals import RentalLogins
from clore.sandbox import Sandbox


def test_mutating_calls_are_audited_in_pairs_with_mode_0600(
    agent: AgentContext, call: Any, quote_and_rent: Any, cheapest: Any
) -> None:
    """quote, rent and cancel each write call + result; search and spend write nothing."""
    server_id = cheapest(agent, "gpu=3090")
    call(agent, "spend")
    quote, rented = quote_and_rent(agent, server_id=server_id, max_hours=1.5)
    order_id = rented.data["order_id"]
    call(agent, "cancel_order", order_id=order_id)
    path = Path(os.environ["CLORE_DATA_DIR"]) / "agent" / "audit.jsonl"
    assert agent.audit.path == path == AuditLog.default_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["tool"], r["event"]) for r in records] == [
        ("quote_rental", "call"),
        ("quote_rental", "result"),
        ("rent_server", "call"),
        ("rent_server", "result"),
        ("cancel_order", "call"),
        ("cancel_order", "result"),
    ]
    assert all(a["call"] == b["call"] for a, b in zip(records[::2], records[1::2], strict=True))
    quoted, rent = records[1], records[3]
    assert quoted["quote"] == rent["quote"] == records[2]["arguments"]["token"]
    assert quoted["quote"].startswith("q-") and quote.data["token"] not in path.read_text()
    assert {"server_id": server_id, "max_hours": 1.5} == records[0]["arguments"]
    assert (rent["order_id"], rent["outcome"], rent["is_error"]) == (order_id, "ok", False)
    assert rent["cost"]["max_cost_usd"] == quote.data["cost"]["max_cost_usd"]
    assert records[5]["order_id"] == order_id


def test_a_refusal_is_audited_with_its_outcome(
    agent: AgentContext, call: Any, cheapest: Any
) -> None:
    """A refused rent is a result line with is_error and the kind of refusal."""
    call(agent, "rent_server", server_id=cheapest(agent, "gpu=3090"), token="nope")
    (_, result) = agent.audit.records()
    assert (result["is_error"], result["outcome"]) == (True, "quote_refused")


def test_an_unwritable_log_stops_the_call(
    make_agent: Any, clore_client: Clore, tmp_path: Path, call: Any, cheapest: Any
) -> None:
    """When the audit file cannot be written, quote and rent do nothing and say why."""
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the log's directory would be")
    ctx = make_agent(audit=AuditLog(blocked / "audit.jsonl"))
    result = call(ctx, "quote_rental", server_id=cheapest(ctx, "gpu=3090"))
    assert result.is_error and result.data["error"] == "audit"
    assert clore_client.my_orders() == []


def test_secrets_never_appear_in_results_or_the_audit(
    agent: AgentContext,
    sandbox: Sandbox,
    clore_client: Clore,
    call: Any,
    cheapest: Any,
) -> None:
    """A whole session with a Jupyter token and a secret env value: the API key, the
    generated SSH password, the token and the value are in no result and not in the log."""
    jupyter = "JupyterTok3n9876"
    env_secret = "hf_SECRETvalue123"
    server_id = cheapest(agent, "gpu=3090")
    args = {
        "server_id": server_id,
        "ports": ["22:tcp", "8888:http"],
        "jupyter_token": jupyter,
        "env": {"HF_TOKEN": env_secret, "MODE": "train"},
    }
    call(agent, "search_market", filters=["gpu=3090"], limit=3)
    call(agent, "show_server", server_id=server_id)
    quote = call(agent, "quote_rental", **args)
    rented = call(agent, "rent_server", **args, token=quote.data["token"])
    order_id = rented.data["order_id"]
    clore_client.wait_for_order(order_id, timeout=120)
    for name, arguments in (
        ("list_orders", {"include_ended": True}),
        ("show_order", {"order_id": order_id}),
        ("wallets", {}),
        ("spend", {}),
        ("cancel_order", {"order_id": order_id}),
        ("cancel_order", {"order_id": order_id}),
        ("rent_server", {**args, "token": quote.data["token"]}),
    ):
        call(agent, name, **arguments)
    login = RentalLogins().get(clore_client.get_order(order_id))
    assert login is not None and login.password
    secrets = [sandbox.demo_key, login.password, jupyter, env_secret]
    seen = call.everything()
    log = agent.audit.path.read_text()
    for secret in secrets:
        assert secret not in seen
        assert secret not in log
    assert '"MODE": "train"' in log and '"jupyter_token": "<hidden>"' in log


def test_the_context_scrubs_every_secret_it_knows(agent: AgentContext, sandbox: Sandbox) -> None:
    """The client's API key and any secret added are replaced wherever they appear."""
    agent.add_secret("Generated42")
    dirty = {"text": f"key {sandbox.demo_key} and Generated42", "list": [sandbox.demo_key]}
    clean = agent.scrub(dirty)
    assert sandbox.demo_key not in json.dumps(clean) and "Generated42" not in json.dumps(clean)
    assert clean["text"] == "key <secret> and <secret>"
