"""The OpenAPI 3.1 document of the public v1 paths and the ``/_sandbox/`` control plane.

The v1 part is generated, not written: every endpoint of ``clore._facts.ENDPOINTS`` (its
method, path, whether it needs a key) with the JSON Schemas that
``msgspec.json.schema_components`` derives from its request, query and response Structs
in ``clore._wire``, field limits included. The answers each code comes with (HTTP 401
for code 3, 429 for code 5) are the facts' too. The control plane, the sandbox's own,
is described here by hand. Precise enough for schemathesis to generate valid and invalid
calls and to check the answers: every response is an object with an integer ``code``.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from clore import _wire
from clore._facts import (
    AUTH_HEADER,
    ENDPOINTS,
    HTTP_STATUS,
    INVALID_TOKEN,
    TOKEN_HEADER,
    Endpoint,
)
from clore._version import __version__
from clore.sandbox.access import LOOPBACK_ONLY, TOKEN_REQUIRED
from clore.sandbox.faults import FAULTS

__all__ = ["openapi_bytes", "openapi_document"]

_REF = "#/components/schemas/{name}"
_PRICE_TABLE = {"type": "object", "additionalProperties": {"type": "number"}}
_NUMBER = {"type": "number"}
#: Every answer, whatever else it holds: an integer code (``Envelope`` adds the rest).
_ENVELOPE = "Envelope"


def _obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required:
        schema["required"] = required
    return schema


def _answer(props: dict[str, Any] | None = None) -> dict[str, Any]:
    """A control-plane answer object: ``code`` plus, on success, the operation's fields."""
    fields = {"code": {"type": "integer"}, "error": {"type": "string"}, **(props or {})}
    return _obj(fields, ["code"])


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


# --------------------------------------------------------------------------- API v1


def _structs() -> list[type[Any]]:
    """Every request, query and response Struct the endpoints name (and the envelope)."""
    names = [_ENVELOPE]
    for ep in ENDPOINTS.values():
        names += [ep.response, *ep.request, *([ep.params] if ep.params else [])]
    return [getattr(_wire, name) for name in dict.fromkeys(names)]


def _bare_code(code: int) -> dict[str, Any]:
    return _obj({"code": {"type": "integer", "enum": [code]}}, ["code"])


def _responses(ep: Endpoint) -> dict[str, Any]:
    ok = {"allOf": [_ref(ep.response), _ref(_ENVELOPE)], "required": ["code"]}
    out = {"200": _json(ok, "code 0 with the answer; 1, 2, 4 or 6 (with error) otherwise")}
    for code, status in sorted(HTTP_STATUS.items(), key=lambda item: item[1]):
        if code != INVALID_TOKEN or ep.auth:
            out[str(status)] = _json(_bare_code(code), f"code {code}")
    return out


def _query(struct: str, schemas: dict[str, Any], description: str = "") -> list[dict[str, Any]]:
    """The fields of ``struct`` as query parameters."""
    schema = schemas[struct]
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        params.append(param)
    return params


def _operation(ep: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": ep.name, "summary": ep.summary}
    if not ep.auth:
        operation["security"] = [{}, {"auth": []}]
    params = _query(ep.params, schemas) if ep.params else []
    if ep.request and ep.method == "GET":
        # A GET with a JSON body: the sandbox also takes the fields as query parameters,
        # which every HTTP client and fuzzer can send.
        for form in ep.request:
            params += _query(form, schemas, "the API takes it in a JSON body on this GET")
    elif ep.request:
        forms = [_ref(form) for form in ep.request]
        operation["requestBody"] = _body(forms[0] if len(forms) == 1 else {"anyOf": forms})
    if params:
        operation["parameters"] = params
    operation["responses"] = _responses(ep)
    return operation


def _api() -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, component schemas) of API v1, generated from the facts and the Structs."""
    _, schemas = msgspec.json.schema_components(_structs(), ref_template=_REF)
    paths = {ep.path: {ep.method.lower(): _operation(ep, schemas)} for ep in ENDPOINTS.values()}
    query_only = {ep.params for ep in ENDPOINTS.values() if ep.params} | {
        form for ep in ENDPOINTS.values() if ep.method == "GET" for form in ep.request
    }
    return paths, {name: schema for name, schema in schemas.items() if name not in query_only}


# --------------------------------------------------------------------------- control plane


def _refused(reason: str, description: str) -> dict[str, Any]:
    props = {
        "code": {"type": "integer", "enum": [INVALID_TOKEN]},
        "error": {"type": "string", "enum": [reason]},
    }
    return _json(_obj(props, ["code", "error"]), description)


_ORDER_ID: dict[str, Any] = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def _control_paths() -> dict[str, Any]:
    plain = {"200": _json(_answer(), "code 0 on success, 2 for a bad body")}
    # No key; the control token when the server has one (else loopback peers only).
    none: list[dict[str, Any]] = [{}, {"sandbox_token": []}]
    paths = _control_operations(plain, none)
    refusals = {
        "401": _refused(TOKEN_REQUIRED, "the server's control token is missing"),
        "403": _refused(LOOPBACK_ONLY, "a peer off loopback, and no token set"),
    }
    for operations in paths.values():
        for operation in operations.values():
            operation["responses"] = {**operation["responses"], **refusals}
    return paths


def _control_operations(
    plain: dict[str, Any], none: list[dict[str, Any]]
) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "/_sandbox/reset": {
            "post": {"operationId": "sandbox_reset", "security": none, "responses": plain}
        },
        "/_sandbox/info": {
            "get": {"operationId": "sandbox_info", "security": none, "responses": plain}
        },
        "/_sandbox/users": {
            "post": {
                "operationId": "sandbox_create_user",
                "security": none,
                "requestBody": _body(
                    _obj(
                        {
                            "name": {"type": "string", "minLength": 1},
                            "balances": {
                                "type": "object",
                                "additionalProperties": {"type": "number", "minimum": 0},
                            },
                            "servers": {"type": "array", "items": {"type": "integer"}},
                        },
                        ["name"],
                    )
                ),
                "responses": {
                    "200": _json(
                        _answer({"api_key": {"type": "string"}, "user_id": {"type": "integer"}}),
                        "the new user",
                    )
                },
            }
        },
        "/_sandbox/advance": {
            "post": {
                "operationId": "sandbox_advance",
                "security": none,
                "requestBody": _body(
                    _obj({"seconds": {"type": "number", "minimum": 0}}, ["seconds"])
                ),
                "responses": {"200": _json(_answer({"now": _NUMBER}), "the new simulated time")},
            }
        },
        "/_sandbox/faults": {
            "post": {
                "operationId": "sandbox_inject_fault",
                "security": none,
                "requestBody": _body(
                    _obj(
                        {
                            "endpoint": {"type": "string"},
                            "fault": {"type": "string", "enum": list(FAULTS)},
                            "count": {"type": "integer", "minimum": 1},
                            "seconds": {"type": "number", "exclusiveMinimum": 0},
                        },
                        ["endpoint", "fault"],
                    )
                ),
                "responses": plain,
            },
            "get": {"operationId": "sandbox_faults", "security": none, "responses": plain},
            "delete": {"operationId": "sandbox_clear_faults", "security": none, "responses": plain},
        },
        "/_sandbox/servers/{server_id}": {
            "post": {
                "operationId": "sandbox_set_server",
                "security": none,
                "parameters": [
                    {
                        "name": "server_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    }
                ],
                "requestBody": _body(
                    _obj(
                        {
                            "price": _obj({"on_demand": _PRICE_TABLE, "spot": _PRICE_TABLE}),
                            "rented": {"type": "boolean"},
                            "online": {"type": "boolean"},
                            "visible": {"type": "boolean"},
                            "end_outbid": {"type": "boolean"},
                            "delivers": {
                                "description": "what the server's machines report instead of "
                                "its listing (merged; a field null: back to the listing; null: "
                                "honest)",
                                "anyOf": [
                                    _obj(
                                        {
                                            "gpu": {"type": ["string", "null"]},
                                            "gpu_count": {"type": ["integer", "null"]},
                                            "gpuram": {"type": ["number", "null"]},
                                            "power_limit": {"type": ["number", "null"]},
                                            "pcie_width": {"type": ["integer", "null"]},
                                            "pcie_gen": {"type": ["integer", "null"]},
                                            "gpu_error": {"type": ["boolean", "null"]},
                                            "slow": {"type": ["number", "null"]},
                                        }
                                    ),
                                    {"type": "null"},
                                ],
                            },
                        }
                    )
                ),
                "responses": plain,
            }
        },
        "/_sandbox/orders/{order_id}/logs": {
            "get": {
                "operationId": "sandbox_order_logs",
                "security": none,
                "parameters": [
                    _ORDER_ID,
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1 << 20},
                    },
                ],
                "responses": {
                    "200": _json(
                        _answer({"order": {"type": "integer"}, "log": {"type": "string"}}),
                        "the newest bytes of the order's command output",
                    )
                },
            }
        },
        "/_sandbox/orders/{order_id}/access": {
            "post": {
                "operationId": "sandbox_set_access_fault",
                "security": none,
                "parameters": [_ORDER_ID],
                "requestBody": _body(
                    _obj(
                        {
                            "fault": {
                                "type": ["string", "null"],
                                "enum": ["refuse", "delay", "drop", None],
                            },
                            "seconds": {"type": "number", "minimum": 0, "maximum": 3600},
                        },
                        ["fault"],
                    )
                ),
                "responses": plain,
            }
        },
        "/_sandbox/machines": {
            "get": {"operationId": "sandbox_machines", "security": none, "responses": plain}
        },
        "/_sandbox/market/tick": {
            "post": {
                "operationId": "sandbox_market_tick",
                "security": none,
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": _obj(
                                {"count": {"type": "integer", "minimum": 1, "maximum": 1000}}
                            )
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        _answer({"events": {"type": "array", "items": {"type": "string"}}}),
                        "what happened",
                    )
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document as a dict (API v1 generated, the control plane added)."""
    paths, schemas = _api()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Clore.ai API v1 (clore sandbox)",
            "version": __version__,
            "description": (
                "The Clore.ai public REST API as implemented by clore.sandbox,"
                " plus its control plane."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "auth": {"type": "apiKey", "in": "header", "name": AUTH_HEADER},
                "sandbox_token": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER},
            },
        },
        "security": [{"auth": []}],
        "paths": {**paths, **_control_paths()},
    }


@functools.lru_cache(maxsize=1)
def openapi_bytes() -> bytes:
    """The document, encoded once."""
    return msgspec.json.encode(openapi_document())
