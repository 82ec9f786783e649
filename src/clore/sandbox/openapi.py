"""The OpenAPI 3.0 document of the public v1 paths and the ``/_sandbox/`` control plane.

Precise enough for schemathesis to generate valid and invalid calls and to check the
answers: every response is an object with an integer ``code``.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from clore._version import __version__
from clore.sandbox.access import TOKEN_HEADER
from clore.sandbox.faults import FAULTS

__all__ = ["openapi_bytes", "openapi_document"]

_CURRENCY = {"type": "string", "enum": ["bitcoin", "CLORE-Blockchain", "USD-Blockchain"]}
_PRICE_TABLE = {"type": "object", "additionalProperties": {"type": "number"}}
_NUMBER = {"type": "number"}


def _obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required:
        schema["required"] = required
    return schema


def _answer(props: dict[str, Any] | None = None) -> dict[str, Any]:
    """An answer object: ``code`` plus, on success, the endpoint's fields."""
    fields = {"code": {"type": "integer"}, "error": {"type": "string"}, **(props or {})}
    return _obj(fields, ["code"])


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(props: dict[str, Any] | None = None, private: bool = True) -> dict[str, Any]:
    out = {
        "200": _json(_answer(props), "code 0 on success; 1, 2, 4 or 6 otherwise"),
        "429": _json(_obj({"code": {"type": "integer", "enum": [5]}}, ["code"]), "rate limited"),
    }
    if private:
        out["401"] = _json(_obj({"code": {"type": "integer", "enum": [3]}}, ["code"]), "bad key")
    return out


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_ORDER = _obj(
    {
        "id": {"type": "integer"},
        "si": {"type": "integer"},
        "mrl": {"type": "number", "description": "seconds"},
        "price": _NUMBER,
        "currency": {"type": "string"},
        "image": {"type": "string"},
        "spot": {"type": "boolean"},
        "ct": _NUMBER,
        "expired": {"type": "boolean"},
        "pub_cluster": {"type": "array", "items": {"type": "string"}},
        "tcp_ports": {"type": "array", "items": {"type": "string"}},
        "http_port": {"type": "string", "nullable": True},
        "http_pub": {"type": "string", "nullable": True},
        "creation_fee": _NUMBER,
        "spend": _NUMBER,
        "online": {"type": "boolean"},
    },
    ["id", "si", "mrl", "price", "currency", "spot", "ct", "expired"],
)

_SERVER = _obj(
    {
        "id": {"type": "integer"},
        "owner": {"type": "integer"},
        "mrl": {"type": "number", "description": "hours"},
        "price": _obj({"on_demand": _PRICE_TABLE, "spot": _PRICE_TABLE}),
        "rented": {"type": "boolean"},
        "specs": {"type": "object"},
        "allowed_coins": {"type": "array", "items": {"type": "string"}},
    },
    ["id", "price", "rented"],
)

_CREATE_ORDER = _obj(
    {
        "currency": _CURRENCY,
        "image": {"type": "string", "minLength": 1, "maxLength": 1024},
        "renting_server": {"type": "integer", "minimum": 1},
        "type": {"type": "string", "enum": ["on-demand", "spot"]},
        "spotprice": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
        "ports": {
            "type": "object",
            "additionalProperties": {"type": "string", "enum": ["tcp", "http"]},
        },
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "ssh_password": {"type": "string", "pattern": "^[A-Za-z0-9]{1,32}$"},
        "ssh_key": {"type": "string", "maxLength": 3072},
        "jupyter_token": {"type": "string", "maxLength": 32},
        "command": {"type": "string"},
        "required_price": {"type": "number"},
        "autossh_entrypoint": {"type": "boolean"},
    },
    ["currency", "image", "renting_server", "type"],
)


def _public_paths() -> dict[str, Any]:
    spot_market = _obj(
        {
            "offers": {
                "type": "array",
                "items": _obj(
                    {
                        "offer_id": {"type": "integer"},
                        "bid": _NUMBER,
                        "active": {"type": "boolean"},
                        "my": {"type": "boolean"},
                        "currency": {"type": "string"},
                    }
                ),
            },
            "server": _obj(
                {"min_pricing": _PRICE_TABLE, "mrl": _NUMBER, "online": {"type": "boolean"}}
            ),
            "currency_rates_in_usd": _PRICE_TABLE,
        }
    )
    wallet = _obj(
        {
            "name": {"type": "string"},
            "deposit": {"type": "string"},
            "balance": {"type": "number", "nullable": True},
            "withdrawal_fee": _NUMBER,
        }
    )
    return {
        "/v1/marketplace": {
            "get": {
                "operationId": "marketplace",
                "security": [{}, {"auth": []}],
                "responses": _responses(
                    {
                        "servers": {"type": "array", "items": _SERVER},
                        "my_servers": {"type": "array", "items": {"type": "integer"}},
                    },
                    private=False,
                ),
            }
        },
        "/v1/spot_marketplace": {
            "get": {
                "operationId": "spot_marketplace",
                "security": [{}, {"auth": []}],
                "parameters": [
                    {
                        "name": "market",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    }
                ],
                "responses": _responses(
                    {"market": {**spot_market, "nullable": True}, "exists": {"type": "boolean"}},
                    private=False,
                ),
            }
        },
        "/v1/my_orders": {
            "get": {
                "operationId": "my_orders",
                "parameters": [
                    {
                        "name": "return_completed",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["true", "false"]},
                    }
                ],
                "responses": _responses({"orders": {"type": "array", "items": _ORDER}}),
            }
        },
        "/v1/create_order": {
            "post": {
                "operationId": "create_order",
                "description": 'Answers {"code": 0} only; find the order in my_orders.',
                "requestBody": _body(_CREATE_ORDER),
                "responses": _responses(),
            }
        },
        "/v1/cancel_order": {
            "post": {
                "operationId": "cancel_order",
                "requestBody": _body(
                    _obj(
                        {
                            "id": {"type": "integer", "minimum": 1},
                            "issue": {"type": "string", "maxLength": 2048},
                        },
                        ["id"],
                    )
                ),
                "responses": _responses(),
            }
        },
        "/v1/set_spot_price": {
            "post": {
                "operationId": "set_spot_price",
                "requestBody": _body(
                    _obj(
                        {
                            "order_id": {"type": "integer", "minimum": 1},
                            "desired_price": {"type": "number"},
                        },
                        ["order_id", "desired_price"],
                    )
                ),
                "responses": _responses({"max_step": _NUMBER, "time_to_lowering": _NUMBER}),
            }
        },
        "/v1/wallets": {
            "get": {
                "operationId": "wallets",
                "responses": _responses({"wallets": {"type": "array", "items": wallet}}),
            }
        },
        "/v1/my_servers": {
            "get": {
                "operationId": "my_servers",
                "responses": _responses(
                    {
                        "servers": {"type": "array", "items": {"type": "object"}},
                        "limit": {"type": "integer"},
                    }
                ),
            }
        },
        "/v1/server_config": {
            "get": {
                "operationId": "server_config",
                "description": (
                    'The API takes {"server_name": ...} as a JSON body on this GET;'
                    " the sandbox also accepts the query parameter."
                ),
                "parameters": [
                    {
                        "name": "server_name",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": _responses(
                    {"config": {"type": "object"}, "creation_completed": {"type": "boolean"}}
                ),
            }
        },
        "/v1/set_server_settings": {
            "post": {
                "operationId": "set_server_settings",
                "requestBody": _body(
                    _obj(
                        {
                            "name": {"type": "string"},
                            "availability": {"type": "boolean"},
                            "mrl": {"type": "number"},
                            "on_demand": _NUMBER,
                            "spot": _NUMBER,
                        },
                        ["name"],
                        additionalProperties=True,
                    )
                ),
                "responses": _responses(),
            }
        },
        "/v1/renter_fees": {
            "get": {
                "operationId": "renter_fees",
                "responses": _responses(
                    {"renter_fees": {"type": "object"}, "creation_fees": {"type": "object"}}
                ),
            }
        },
        "/v1/poh_balance": {
            "get": {"operationId": "poh_balance", "responses": _responses({"balance": _NUMBER})}
        },
    }


def _refused(reason: str, description: str) -> dict[str, Any]:
    props = {
        "code": {"type": "integer", "enum": [3]},
        "error": {"type": "string", "enum": [reason]},
    }
    return _json(_obj(props, ["code", "error"]), description)


def _control_paths() -> dict[str, Any]:
    plain = {"200": _json(_answer(), "code 0 on success, 2 for a bad body")}
    # No key; the control token when the server has one (else loopback peers only).
    none: list[dict[str, Any]] = [{}, {"sandbox_token": []}]
    paths = _control_operations(plain, none)
    refusals = {
        "401": _refused("control_token_required", "the server's control token is missing"),
        "403": _refused("control_plane_loopback_only", "a peer off loopback, and no token set"),
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
                        }
                    )
                ),
                "responses": plain,
            }
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
    """The OpenAPI 3.0.3 document as a dict."""
    return {
        "openapi": "3.0.3",
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
            "securitySchemes": {
                "auth": {"type": "apiKey", "in": "header", "name": "auth"},
                "sandbox_token": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER},
            }
        },
        "security": [{"auth": []}],
        "paths": {**_public_paths(), **_control_paths()},
    }


@functools.lru_cache(maxsize=1)
def openapi_bytes() -> bytes:
    """The document, encoded once."""
    return msgspec.json.encode(openapi_document())
