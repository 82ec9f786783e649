"""The tool registry: every tool's JSON schema is a valid, closed object schema its own
arguments satisfy; the annotations are the true ones; read-only mode registers no
mutating tool at all; bad arguments are results naming the field, never exceptions."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import jsonschema
import pytest

from clore.agent import AgentContext, AgentPolicy, all_tools, call_tool, tools

MUTATING = {"quote_rental", "rent_server", "cancel_order", "quote_job", "start_job", "stop_job"}
EXPECTED = [
    "search_market",
    "list_gpus",
    "show_server",
    "quote_rental",
    "rent_server",
    "list_orders",
    "show_order",
    "verify_order",
    "cancel_order",
    "wallets",
    "spend",
    "quote_job",
    "start_job",
    "job_status",
    "job_logs",
    "stop_job",
]
SAMPLES: dict[str, dict[str, Any]] = {
    "search_market": {"filters": ["gpu=4090", "gpus>=1"], "sort": "-reliability", "limit": 5},
    "list_gpus": {"sort": "price", "limit": 3},
    "show_server": {"server_id": 1},
    "quote_rental": {"server_id": 1, "order_type": "spot", "bid": "0.1usd/h", "max_hours": 2},
    "rent_server": {"server_id": 1, "token": "x", "ports": ["22:tcp"], "env": {"A": "b"}},
    "list_orders": {"include_ended": True},
    "show_order": {"order_id": 3},
    "verify_order": {"order_id": 3, "load": False},
    "cancel_order": {"order_id": 3, "issue": "GPU missing"},
    "wallets": {},
    "spend": {},
    "quote_job": {
        "server_id": 1,
        "command": "python train.py",
        "outputs": ["out/"],
        "max_hours": 1,
    },
    "start_job": {"server_id": 1, "command": "nvidia-smi", "env": {"A": "b"}, "token": "x"},
    "job_status": {"job_id": "a1b2c3d4", "events": 3},
    "job_logs": {"job_id": "a1b2c3d4", "stream": "stderr", "offset": 0, "max_bytes": 100},
    "stop_job": {"job_id": "a1b2c3d4"},
}


def test_the_tools_are_listed_in_order_with_unique_names() -> None:
    """Sixteen tools, the job tools last, each named once."""
    names = [t.name for t in tools(AgentPolicy())]
    assert names == EXPECTED


@pytest.mark.parametrize("spec", all_tools(), ids=lambda s: s.name)
def test_every_schema_is_a_valid_closed_object_schema(spec: Any) -> None:
    """Draft 2020-12 valid, an object, no unknown properties, the sample arguments valid and
    an unknown property invalid."""
    schema = spec.input_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert (schema["type"], schema["additionalProperties"]) == ("object", False)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(SAMPLES[spec.name])
    assert not validator.is_valid({**SAMPLES[spec.name], "surprise": 1})


@pytest.mark.parametrize("spec", all_tools(), ids=lambda s: s.name)
def test_annotations_tell_the_truth(spec: Any) -> None:
    """Mutating tools are the ones that rent or cancel; only cancel destroys; a read-only
    tool is never destructive; every description is one paragraph for a model."""
    assert (spec.name in MUTATING) == spec.mutating
    assert spec.destructive == (spec.name in {"cancel_order", "stop_job"})
    assert not (spec.read_only and spec.destructive)
    read_write = {"rent_server", "cancel_order", "verify_order", "start_job", "stop_job"}
    assert spec.read_only == (spec.name not in read_write)
    assert "\n" not in spec.description and 150 < len(spec.description) < 900
    assert spec.annotations()["readOnlyHint"] is spec.read_only


def test_read_only_mode_registers_no_mutating_tool(agent: AgentContext) -> None:
    """The read-only list lacks every mutating tool, and calling one says it does not exist
    (nothing audited)."""
    policy = AgentPolicy(read_only=True)
    names = {t.name for t in tools(policy)}
    assert set(EXPECTED) - MUTATING == names
    ctx = AgentContext(agent.client, policy, audit=agent.audit, clock=agent.clock)
    result = call_tool(ctx, "rent_server", {"server_id": 1, "token": "x"})
    assert result.is_error and "read-only mode" in result.text
    assert result.data["error"] == "unknown_tool"
    assert agent.audit.records() == []


def test_bad_arguments_are_results_naming_the_field(agent: AgentContext) -> None:
    """A wrong type, an unknown field and an out-of-range number each come back as an error
    result that names the problem."""
    wrong = call_tool(agent, "show_server", {"server_id": "abc"})
    unknown = call_tool(agent, "search_market", {"filterz": ["gpu=4090"]})
    too_many = call_tool(agent, "search_market", {"limit": 1000})
    bad_filter = call_tool(agent, "search_market", {"filters": ["gpu=RTX"]})
    assert all(r.is_error for r in (wrong, unknown, too_many, bad_filter))
    assert "$.server_id" in wrong.text
    assert "filterz" in unknown.text
    assert "$.limit" in too_many.text
    assert "names no GPU model" in bad_filter.text
    assert {r.data["error"] for r in (wrong, unknown, too_many, bad_filter)} == {"bad_arguments"}


def test_an_unknown_tool_is_a_result(agent: AgentContext) -> None:
    """A tool name nobody registered is an error result, not a raise."""
    result = call_tool(agent, "format_disk", {})
    assert result.is_error and "format_disk" in result.text


def test_importing_the_library_imports_neither_mcp_nor_httpx() -> None:
    """clore.agent works without the mcp extra and loads no HTTP stack by itself."""
    code = (
        "import sys, clore.agent; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'httpx')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
