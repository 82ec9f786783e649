"""Request bodies of the writes, and the bare envelope every response shares."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

from clore._wire.common import Number

__all__ = [
    "CancelOrderRequest",
    "CreateOrderRequest",
    "Envelope",
    "ServerConfigRequest",
    "SetSpotPriceRequest",
]


# --------------------------------------------------------------------------- requests


class Envelope(Struct, frozen=True, gc=False):
    """Every response: an integer ``code``; code 6 adds ``error`` and sometimes more."""

    code: int = 0
    error: str | UnsetType = UNSET
    max_step: Number | UnsetType = UNSET
    time_to_lowering: Number | UnsetType = UNSET


class CreateOrderRequest(Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    """``POST /v1/create_order`` body. ``spotprice`` and ``required_price`` are per day."""

    currency: str
    image: str
    renting_server: int
    type: str = "on-demand"
    spotprice: Number | None = None
    ports: dict[str, str] | None = None
    env: dict[str, str] | None = None
    ssh_password: str | None = None
    ssh_key: str | None = None
    jupyter_token: str | None = None
    command: str | None = None
    required_price: Number | None = None
    autossh_entrypoint: bool | None = None
    remember_password: bool | None = None
    dockerhub_auth: Any = None


class CancelOrderRequest(Struct, frozen=True, omit_defaults=True):
    """``POST /v1/cancel_order`` body."""

    id: int
    issue: str | None = None


class SetSpotPriceRequest(Struct, frozen=True):
    """``POST /v1/set_spot_price`` body: the new bid per day."""

    order_id: int
    desired_price: Number


class ServerConfigRequest(Struct, frozen=True):
    """``GET /v1/server_config`` body."""

    server_name: str
