"""A bounded schemathesis run over the OpenAPI document: no 5xx, always {"code": int}.

(Schemathesis's own pytest plugin does not support pytest 9, so cases are drawn from its
per-operation hypothesis strategies directly.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from clore.sandbox import Sandbox
from clore.sandbox.openapi import openapi_document

LABELS = [
    result.ok().label
    for result in schemathesis.openapi.from_dict(openapi_document()).get_all_operations()
]
PUBLIC = [label for label in LABELS if " /v1/" in label]
CONTROL = [
    label
    for label in LABELS
    if "/_sandbox/" in label and "reset" not in label and "faults" not in label
]


@pytest.fixture
def fuzz_sandbox(sandbox_factory: Callable[..., Sandbox], small_seed: Path) -> Sandbox:
    return sandbox_factory(seed=str(small_seed), rate_limit=False)


def _operation(sandbox: Sandbox, label: str) -> Any:
    schema = schemathesis.openapi.from_asgi("/_sandbox/openapi.json", sandbox.app)
    return schema.find_operation_by_label(label)


def _assert_envelope(response: Any) -> None:
    assert response.status_code < 500, response.text
    body = json.loads(response.content)
    assert isinstance(body, dict) and type(body.get("code")) is int


def _fuzz(operation: Any, headers: list[dict[str, str]], examples: int) -> None:
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        checks = [not_a_server_error]
        if mode is GenerationMode.POSITIVE:
            checks.append(response_schema_conformance)

        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            for extra in headers:
                response = case.call(headers=extra)
                _assert_envelope(response)
                case.validate_response(response, checks=checks)  # noqa: B023 - run at once

        try:
            run()
        except Unsatisfiable:
            # No invalid input exists for an operation without parameters or body.
            assert mode is GenerationMode.NEGATIVE


@pytest.mark.parametrize("label", PUBLIC)
def test_public_api_fuzz(fuzz_sandbox: Sandbox, label: str) -> None:
    """Generated valid and invalid calls, as the demo user and anonymously, keep the envelope."""
    _fuzz(_operation(fuzz_sandbox, label), [{"auth": fuzz_sandbox.demo_key}, {}], 25)


@pytest.mark.parametrize("label", CONTROL)
def test_control_plane_fuzz(fuzz_sandbox: Sandbox, label: str) -> None:
    """Generated control-plane calls answer an object with an integer code, never a 5xx."""
    _fuzz(_operation(fuzz_sandbox, label), [{}], 10)
