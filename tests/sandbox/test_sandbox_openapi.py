"""The OpenAPI document: API v1 generated from the facts and the wire Structs, the control
plane kept, and every answer the sandbox gives conforming to it."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from clore import _wire, preview_create_order
from clore._clock import ManualClock
from clore._facts import (
    AUTH_HEADER,
    ENDPOINTS,
    MAX_IMAGE,
    MAX_ISSUE,
    MAX_SSH_KEY,
    SSH_PASSWORD_PATTERN,
    TOKEN_HEADER,
)
from clore.sandbox import Sandbox
from clore.sandbox.openapi import openapi_bytes, openapi_document

jsonschema_rs = pytest.importorskip("jsonschema_rs")

DOC = openapi_document()
SCHEMAS = DOC["components"]["schemas"]


def _validator(schema: dict[str, Any]) -> Any:
    # References point into the document's components: validate with them at hand.
    return jsonschema_rs.validator_for({**schema, "components": DOC["components"]})


def test_every_endpoint_is_an_operation_of_its_method_and_path() -> None:
    """Each endpoint of the facts is one operation, named after it, at /v1/<name>."""
    operations = {
        (method.upper(), path, operation["operationId"])
        for path, item in DOC["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
    }
    assert {(ep.method, ep.path, ep.name) for ep in ENDPOINTS.values()} == operations


def test_the_schemas_are_msgspecs_own_for_the_structs() -> None:
    """The component schemas are what msgspec generates for the endpoints' Structs."""
    names = ["CreateOrderRequest", "SetServerSettingsPerCurrencyRequest", "MyOrdersResponse"]
    _, generated = msgspec.json.schema_components(
        [getattr(_wire, name) for name in names], ref_template="#/components/schemas/{name}"
    )
    assert {name: SCHEMAS[name] for name in generated} == generated


def test_request_bodies_carry_the_field_limits_of_the_facts() -> None:
    """create_order's and cancel_order's bodies state the limits the SDK checks."""
    create = SCHEMAS["CreateOrderRequest"]["properties"]
    cancel = SCHEMAS["CancelOrderRequest"]["properties"]
    assert (
        create["ssh_password"]["anyOf"][0]["pattern"],
        create["ssh_key"]["anyOf"][0]["maxLength"],
        create["image"]["maxLength"],
        create["type"]["enum"],
        cancel["issue"]["anyOf"][0]["maxLength"],
    ) == (SSH_PASSWORD_PATTERN, MAX_SSH_KEY, MAX_IMAGE, ["on-demand", "spot"], MAX_ISSUE)
    body = DOC["paths"]["/v1/set_server_settings"]["post"]["requestBody"]
    forms = body["content"]["application/json"]["schema"]["anyOf"]
    assert [f["$ref"].rsplit("/", 1)[1] for f in forms] == list(
        ENDPOINTS["set_server_settings"].request
    )


def test_what_the_sdk_sends_fits_the_schema_and_what_it_refuses_does_not() -> None:
    """A previewed create_order body validates; one breaking a limit does not."""
    validator = _validator({"$ref": "#/components/schemas/CreateOrderRequest"})
    good = msgspec.to_builtins(preview_create_order(1, "img", ssh_password="a" * 32))
    too_long = {**good, "ssh_password": "a" * 33}
    assert (validator.is_valid(good), validator.is_valid(too_long)) == (True, False)


def test_keys_answers_and_the_control_plane_are_documented() -> None:
    """Public endpoints take no key, the others answer 401 without one, every one 429; the
    control plane keeps its token header and its 401/403 refusals."""
    schemes = DOC["components"]["securitySchemes"]
    assert (schemes["auth"]["name"], schemes["sandbox_token"]["name"]) == (
        AUTH_HEADER,
        TOKEN_HEADER,
    )
    for ep in ENDPOINTS.values():
        operation = DOC["paths"][ep.path][ep.method.lower()]
        assert ("401" in operation["responses"], "security" in operation) == (ep.auth, not ep.auth)
        assert "429" in operation["responses"]
    control = [op for path, item in DOC["paths"].items() if path.startswith("/_sandbox/")
               for op in item.values()]  # fmt: skip
    assert {op["operationId"] for op in control} == {
        "sandbox_reset",
        "sandbox_info",
        "sandbox_create_user",
        "sandbox_advance",
        "sandbox_inject_fault",
        "sandbox_faults",
        "sandbox_clear_faults",
        "sandbox_set_server",
        "sandbox_market_tick",
        "sandbox_order_logs",
        "sandbox_set_access_fault",
        "sandbox_machines",
    }
    assert all({"401", "403"} <= set(op["responses"]) for op in control)


def test_the_served_document_is_the_generated_one(sandbox: Sandbox) -> None:
    """GET /_sandbox/openapi.json serves this document."""
    with httpx.Client(transport=sandbox.transport(), base_url="http://sandbox.local") as http:
        assert http.get("/_sandbox/openapi.json").content == openapi_bytes()


@pytest.fixture
def answers(sandbox_factory: Any, sandbox_clock: ManualClock) -> list[tuple[str, httpx.Response]]:
    """The sandbox's answer to every GET endpoint (the full snapshot, with an on-demand
    order and a spot bid placed), and to writes that succeed and fail."""
    sandbox: Sandbox = sandbox_factory(rate_limit=False)
    client = sandbox.client()
    free = [s for s in client.marketplace() if not s.rented and s.accepts("bitcoin")]
    client.create_order(free[0].id, "img")
    bid = client.create_order(free[1].id, "img", order_type="spot", spotprice=1.0)
    sandbox_clock.advance(60)
    mine = client.my_servers()[0].name
    key = {AUTH_HEADER: sandbox.demo_key}
    out: list[tuple[str, httpx.Response]] = []
    with httpx.Client(transport=sandbox.transport(), base_url="http://sandbox.local") as http:
        for path, params in [
            ("/v1/marketplace", {}),
            ("/v1/spot_marketplace", {"market": free[1].id}),
            ("/v1/spot_marketplace", {"market": 999999999}),
            ("/v1/my_orders", {"return_completed": "true"}),
            ("/v1/wallets", {}),
            ("/v1/my_servers", {}),
            ("/v1/server_config", {"server_name": mine}),
            ("/v1/renter_fees", {}),
            ("/v1/poh_balance", {}),
        ]:
            out.append((f"GET {path}", http.get(path, params=params, headers=key)))
        out.append(("GET /v1/wallets", http.get("/v1/wallets")))  # no key: 401
        for body in ({"order_id": bid.id, "desired_price": 1.5}, {"order_id": "x"}):
            answer = http.post("/v1/set_spot_price", json=body, headers=key)
            out.append(("POST /v1/set_spot_price", answer))
        taken = {"currency": "bitcoin", "image": "i", "renting_server": free[0].id}
        out.append(
            ("POST /v1/create_order", http.post("/v1/create_order", json=taken, headers=key))
        )
    return out


def test_every_answer_conforms_to_the_generated_schema(
    answers: list[tuple[str, httpx.Response]],
) -> None:
    """Each answer validates against the schema documented for its status."""
    failures = []
    for label, response in answers:
        method, path = label.split(" ")
        documented = DOC["paths"][path][method.lower()]["responses"][str(response.status_code)]
        schema = documented["content"]["application/json"]["schema"]
        errors = [str(e)[:200] for e in _validator(schema).iter_errors(response.json())]
        if errors:
            failures.append((label, response.status_code, errors[:3]))
    assert failures == []
    codes = {(r.status_code, r.json()["code"]) for _, r in answers}
    assert {(200, 0), (200, 2), (200, 6), (401, 3)} == codes
