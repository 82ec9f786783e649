"""Request bodies and query parameters of the API, and the bare envelope every answer shares.

The field limits of ``clore._facts`` are ``msgspec.Meta`` constraints here, so decoding a
body (the sandbox does) refuses what the API refuses, and the OpenAPI document generated
from these Structs (``clore.sandbox.openapi``) states them. The SDK builds these Structs
only from arguments ``clore._validate`` has checked against the same limits.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, field

from clore._facts import (
    MAX_COMMAND,
    MAX_ENV_NAME,
    MAX_ENV_VARS,
    MAX_ID,
    MAX_IMAGE,
    MAX_ISSUE,
    MAX_JUPYTER_TOKEN,
    MAX_MRL_HOURS,
    MAX_PORTS,
    MAX_PRICE,
    MAX_SERVER_NAME,
    MAX_SSH_KEY,
    PORT_PATTERN,
    SSH_PASSWORD_PATTERN,
    Currency,
    OrderType,
    Protocol,
)
from clore._wire.common import Number

__all__ = [
    "PER_CURRENCY_PREFIX",
    "CancelOrderRequest",
    "CreateOrderRequest",
    "Envelope",
    "MyOrdersParams",
    "ServerConfigRequest",
    "SetServerSettingsPerCurrencyRequest",
    "SetServerSettingsRequest",
    "SetSpotPriceRequest",
    "SpotMarketplaceParams",
]

Id = Annotated[int, Meta(ge=1, le=MAX_ID, description="a server or order id")]
Price = Annotated[float, Meta(gt=0, lt=MAX_PRICE, description="per day")]
Hours = Annotated[float, Meta(gt=0, le=MAX_MRL_HOURS, description="hours")]
ServerName = Annotated[str, Meta(min_length=1, max_length=MAX_SERVER_NAME)]
PortKey = Annotated[str, Meta(pattern=PORT_PATTERN, description="a port number, 1 to 65535")]
EnvName = Annotated[str, Meta(min_length=1, max_length=MAX_ENV_NAME)]
Ports = Annotated[
    dict[PortKey, Protocol], Meta(max_length=MAX_PORTS, description="at most one http port")
]
# Values (at most MAX_ENV_VALUE characters) are checked by the reader: its message names
# the variable, which a schema error cannot.
Env = Annotated[dict[EnvName, str], Meta(max_length=MAX_ENV_VARS)]
PriceTable = dict[Currency, Price]


# --------------------------------------------------------------------------- answers


class Envelope(Struct, frozen=True, gc=False):
    """Every response: an integer ``code``; code 6 adds ``error`` and sometimes more."""

    code: int = 0
    error: str | UnsetType = UNSET
    max_step: Number | UnsetType = UNSET
    time_to_lowering: Number | UnsetType = UNSET


# --------------------------------------------------------------------------- renting


class CreateOrderRequest(Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    """``POST /v1/create_order`` body. ``spotprice`` and ``required_price`` are per day."""

    currency: Currency
    image: Annotated[str, Meta(min_length=1, max_length=MAX_IMAGE)]
    renting_server: Id
    type: OrderType = "on-demand"
    spotprice: Price | None = None
    ports: Ports | None = None
    env: Env | None = None
    ssh_password: Annotated[str, Meta(pattern=SSH_PASSWORD_PATTERN)] | None = None
    ssh_key: Annotated[str, Meta(max_length=MAX_SSH_KEY)] | None = None
    jupyter_token: Annotated[str, Meta(max_length=MAX_JUPYTER_TOKEN)] | None = None
    command: Annotated[str, Meta(max_length=MAX_COMMAND)] | None = None
    required_price: Price | None = None
    autossh_entrypoint: bool | None = None
    remember_password: bool | None = None
    dockerhub_auth: Any = None


class CancelOrderRequest(Struct, frozen=True, omit_defaults=True):
    """``POST /v1/cancel_order`` body; ``issue`` reports a problem with the server."""

    id: Id
    issue: Annotated[str, Meta(max_length=MAX_ISSUE)] | None = None


class SetSpotPriceRequest(Struct, frozen=True):
    """``POST /v1/set_spot_price`` body: the new bid per day."""

    order_id: Id
    desired_price: Price


class SpotMarketplaceParams(Struct, frozen=True):
    """``GET /v1/spot_marketplace`` query: the server whose offers to list."""

    market: Id


class MyOrdersParams(Struct, frozen=True):
    """``GET /v1/my_orders`` query: ended orders too when ``"true"``."""

    return_completed: Literal["true", "false"] = "false"


# --------------------------------------------------------------------------- hosting


class ServerConfigRequest(Struct, frozen=True):
    """``GET /v1/server_config`` body (a GET with a JSON body)."""

    server_name: ServerName


class SetServerSettingsRequest(Struct, frozen=True, omit_defaults=True):
    """``POST /v1/set_server_settings``, the legacy form. Prices per day: a number (in
    bitcoin) or ``{currency: price}``; ``mrl`` in hours; ``availability`` public/hidden.

    A setting left out is not changed (``null`` is not a value). ``end_outbid`` is the
    sandbox's extension: outbid spot offers end instead of waiting.
    """

    name: ServerName
    availability: bool | UnsetType = UNSET
    mrl: Hours | UnsetType = UNSET
    on_demand: Price | PriceTable | UnsetType = UNSET
    spot: Price | PriceTable | UnsetType = UNSET
    end_outbid: bool | UnsetType = UNSET


class SetServerSettingsPerCurrencyRequest(Struct, frozen=True, omit_defaults=True):
    """``POST /v1/set_server_settings``, the per-currency form: ``<currency>_on_demand``,
    ``<currency>_spot`` (per day) and ``enabled-<currency>`` (accept it or not). A setting
    left out is not changed."""

    name: ServerName
    availability: bool | UnsetType = UNSET
    mrl: Hours | UnsetType = UNSET
    bitcoin_on_demand: Price | UnsetType = field(default=UNSET, name="bitcoin_on_demand")
    bitcoin_spot: Price | UnsetType = field(default=UNSET, name="bitcoin_spot")
    clore_on_demand: Price | UnsetType = field(default=UNSET, name="CLORE-Blockchain_on_demand")
    clore_spot: Price | UnsetType = field(default=UNSET, name="CLORE-Blockchain_spot")
    usd_on_demand: Price | UnsetType = field(default=UNSET, name="USD-Blockchain_on_demand")
    usd_spot: Price | UnsetType = field(default=UNSET, name="USD-Blockchain_spot")
    enabled_bitcoin: bool | UnsetType = field(default=UNSET, name="enabled-bitcoin")
    enabled_clore: bool | UnsetType = field(default=UNSET, name="enabled-CLORE-Blockchain")
    enabled_usd: bool | UnsetType = field(default=UNSET, name="enabled-USD-Blockchain")

    def by_currency(self) -> dict[Currency, tuple[float | None, float | None, bool | None]]:
        """``{currency: (on_demand, spot, enabled)}`` for every currency, None where unset."""
        out: dict[Currency, tuple[float | None, float | None, bool | None]] = {}
        for currency, prefix in PER_CURRENCY_PREFIX.items():
            values = [
                getattr(self, f"{prefix}_on_demand"),
                getattr(self, f"{prefix}_spot"),
                getattr(self, f"enabled_{prefix}"),
            ]
            on_demand, spot, enabled = (None if v is UNSET else v for v in values)
            out[currency] = (on_demand, spot, enabled)
        return out


#: The attribute prefix of each currency's fields in ``SetServerSettingsPerCurrencyRequest``
#: (``clore_on_demand`` is sent as ``CLORE-Blockchain_on_demand``).
PER_CURRENCY_PREFIX: Final[dict[Currency, str]] = {
    "bitcoin": "bitcoin",
    "CLORE-Blockchain": "clore",
    "USD-Blockchain": "usd",
}
