"""The facts of the Clore.ai API v1 that the SDK and the sandbox share, written once.

This module owns what both halves must agree on (``../shared/clore-api.md``): every
endpoint (method, path, whether it needs a key, whether it may be repeated, the names of
its request and response Structs in ``clore._wire``), the answer codes and the code-6
``error`` strings, the rate-limit intervals, the header names, the currency keys and the
aliases people type, the order types and port protocols, and the field limits (the
request Structs turn them into ``msgspec.Meta`` constraints, the SDK's validation and the
sandbox's checks read them from here). Limits the reference leaves open are the
sandbox's decisions (docs/sandbox.md) and are marked so.

Pure data and one lookup, no msgspec: ``clore --help`` and ``clore.market.pricing`` import
it without loading the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

__all__ = [
    "APPLICATION_ERROR",
    "AUTH_HEADER",
    "CODE_MEANINGS",
    "CREATE_INTERVAL",
    "CURRENCIES",
    "CURRENCY_ALIASES",
    "CURRENCY_NAMES",
    "CURRENCY_NOT_ALLOWED",
    "DB_ERROR",
    "DETAIL_HEADER",
    "ENDPOINTS",
    "ERROR_STRINGS",
    "EXCEEDED_MAX_STEP",
    "HTTP_STATUS",
    "INVALID_ENDPOINT",
    "INVALID_INPUT",
    "INVALID_TOKEN",
    "LOWERING_TOO_SOON",
    "MAX_COMMAND",
    "MAX_ENV_NAME",
    "MAX_ENV_VALUE",
    "MAX_ENV_VARS",
    "MAX_ID",
    "MAX_IMAGE",
    "MAX_ISSUE",
    "MAX_JUPYTER_TOKEN",
    "MAX_MRL_HOURS",
    "MAX_PORTS",
    "MAX_PRICE",
    "MAX_SERVER_NAME",
    "MAX_SSH_KEY",
    "MAX_SSH_PASSWORD",
    "MIN_INTERVAL",
    "NOT_ENOUGH_BALANCE",
    "NOW_HEADER",
    "OK",
    "ORDER_TYPES",
    "ORDER_TYPE_ALIASES",
    "ORDER_TYPE_NAMES",
    "PORT_PATTERN",
    "PRICE_CHANGED",
    "PROTOCOLS",
    "RATE_LIMITED",
    "RETRY_AFTER_HEADER",
    "SCALE_HEADER",
    "SERVER_ALREADY_RENTED",
    "SERVER_OFFLINE",
    "SPOT_LOWER_INTERVAL",
    "SSH_PASSWORD_PATTERN",
    "TOKEN_HEADER",
    "TOO_LOW_PRICE",
    "Currency",
    "CurrencyName",
    "Endpoint",
    "Kind",
    "Method",
    "OrderType",
    "OrderTypeName",
    "Protocol",
    "currency_key",
    "normalize_currency",
]

# --------------------------------------------------------------------------- currencies

Currency = Literal["bitcoin", "CLORE-Blockchain", "USD-Blockchain"]

#: The three currency keys the API knows, in the order the API lists them.
CURRENCIES: Final[tuple[Currency, ...]] = get_args(Currency)

#: Every spelling people type, lower case, mapped to the API's currency key. The one
#: alias table: ``create_order``, ``Server.price_per_day``, the price parser and the
#: CLI's ``--currency`` all look names up here (case-insensitively, spaces trimmed).
CURRENCY_ALIASES: Final[Mapping[str, Currency]] = {
    "btc": "bitcoin",
    "bitcoin": "bitcoin",
    "clore": "CLORE-Blockchain",
    "clore-blockchain": "CLORE-Blockchain",
    "usd": "USD-Blockchain",
    "usd-blockchain": "USD-Blockchain",
}


#: The spellings of a currency the SDK's methods are typed to take (``create_order``'s
#: ``currency``): the API's keys and the aliases, as written in the alias table. At run
#: time any case is accepted; a type checker holds code to these.
CurrencyName = Literal[
    "bitcoin",
    "btc",
    "CLORE-Blockchain",
    "clore",
    "clore-blockchain",
    "USD-Blockchain",
    "usd",
    "usd-blockchain",
]
CURRENCY_NAMES: Final[tuple[CurrencyName, ...]] = get_args(CurrencyName)


def normalize_currency(name: str) -> Currency:
    """The API's currency key for ``name`` (``btc``, ``clore``, ``usd`` or a full key).

    Raises ``ValueError`` naming the known currencies when ``name`` is not one of them.
    """
    key = CURRENCY_ALIASES.get(name.strip().lower())
    if key is None:
        known = ", ".join(CURRENCIES)
        raise ValueError(f"unknown currency {name!r}: expected one of {known} (or btc, clore, usd)")
    return key


def currency_key(name: str) -> str:
    """The API's key for a known spelling of a currency, else ``name`` unchanged: for
    lookups in the API's tables (an unknown name then finds nothing, as it should)."""
    return CURRENCY_ALIASES.get(name.strip().lower(), name)


# --------------------------------------------------------------------------- orders

OrderType = Literal["on-demand", "spot"]
#: ``create_order``'s ``type``.
ORDER_TYPES: Final[tuple[OrderType, ...]] = get_args(OrderType)

#: ``create_order``'s ``order_type`` as people write it (the marketplace UI, the JSON
#: field), lower case, mapped to the API's ``type``: the one order-type alias table.
ORDER_TYPE_ALIASES: Final[Mapping[str, OrderType]] = {
    "on-demand": "on-demand",
    "on_demand": "on-demand",
    "ondemand": "on-demand",
    "spot": "spot",
}
#: The spellings the SDK's methods are typed to take (the keys of ``ORDER_TYPE_ALIASES``).
OrderTypeName = Literal["on-demand", "on_demand", "ondemand", "spot"]
ORDER_TYPE_NAMES: Final[tuple[OrderTypeName, ...]] = get_args(OrderTypeName)

Protocol = Literal["tcp", "http"]
#: How a container port is forwarded; the reference documents only these two.
PROTOCOLS: Final[tuple[Protocol, ...]] = get_args(Protocol)

# --------------------------------------------------------------------------- limits
# The reference's limits.
MAX_SSH_PASSWORD: Final = 32
MAX_SSH_KEY: Final = 3072
MAX_JUPYTER_TOKEN: Final = 32
MAX_ISSUE: Final = 2048
#: ``ssh_password``: letters and digits only. Written so that JSON Schema (ECMA) and
#: Python's ``re.fullmatch`` read it alike (``$`` alone lets Python accept a final newline).
SSH_PASSWORD_PATTERN: Final = f"^[A-Za-z0-9]{{1,{MAX_SSH_PASSWORD}}}$"
#: Ids (servers, orders) are 64-bit integers on the wire; the API's are positive.
MAX_ID: Final = 2**63 - 1

# Decisions (sandbox): limits the reference leaves open (docs/sandbox.md, "Field limits").
MAX_IMAGE: Final = 1024
MAX_COMMAND: Final = 65536
MAX_PORTS: Final = 32
#: A ``ports`` key: a port number in ASCII digits (1..65535 is checked as a number).
PORT_PATTERN: Final = "^[0-9]{1,5}$"
MAX_ENV_VARS: Final = 256
MAX_ENV_NAME: Final = 256
MAX_ENV_VALUE: Final = 16384
MAX_SERVER_NAME: Final = 256
#: Prices and bids stay below this (per day, in any currency).
MAX_PRICE: Final = 1e12
#: The longest ``mrl`` a server may have, in hours.
MAX_MRL_HOURS: Final = 100000

# --------------------------------------------------------------------------- rate limits
# Per API key; each counts from the previous accepted request (the sandbox) or answer (SDK).
MIN_INTERVAL: Final = 1.0
CREATE_INTERVAL: Final = 5.0
#: A spot order's price may be lowered once per this many seconds (server time).
SPOT_LOWER_INTERVAL: Final = 600.0

# --------------------------------------------------------------------------- headers
#: The request header carrying the API key (not ``Authorization: Bearer``).
AUTH_HEADER: Final = "auth"
RETRY_AFTER_HEADER: Final = "retry-after"
#: Sent by the sandbox with every answer: its unix time (a float) ...
NOW_HEADER: Final = "x-sandbox-now"
#: ... and its seconds per real second (``0``: a clock that moves only when told).
SCALE_HEADER: Final = "x-sandbox-time-scale"
#: The sandbox's explanation of a refusal, for humans (never in the body).
DETAIL_HEADER: Final = "x-sandbox-detail"
#: The request header carrying the sandbox's control-plane token.
TOKEN_HEADER: Final = "x-sandbox-token"

# --------------------------------------------------------------------------- codes
OK: Final = 0
DB_ERROR: Final = 1
INVALID_INPUT: Final = 2
INVALID_TOKEN: Final = 3
INVALID_ENDPOINT: Final = 4
RATE_LIMITED: Final = 5
APPLICATION_ERROR: Final = 6

#: What each answer ``code`` means, as the reference states it.
CODE_MEANINGS: Final[Mapping[int, str]] = {
    OK: "success",
    DB_ERROR: "database error (retry later)",
    INVALID_INPUT: "invalid input data",
    INVALID_TOKEN: "invalid API token",
    INVALID_ENDPOINT: "invalid endpoint",
    RATE_LIMITED: "rate limit exceeded",
    APPLICATION_ERROR: "application error",
}

#: The HTTP status of an answer with this code; every other code comes with 200.
HTTP_STATUS: Final[Mapping[int, int]] = {INVALID_TOKEN: 401, RATE_LIMITED: 429}

# Code-6 ``error`` strings (the reference's, and the sandbox's decision ``price-changed``).
EXCEEDED_MAX_STEP: Final = "exceeded_max_step"  # with ``max_step``
LOWERING_TOO_SOON: Final = "can_lower_every_600_seconds"  # with ``time_to_lowering``
SERVER_ALREADY_RENTED: Final = "server-already-rented"
NOT_ENOUGH_BALANCE: Final = "not_enough_balance"
TOO_LOW_PRICE: Final = "too_low_price"
SERVER_OFFLINE: Final = "server-offline"
CURRENCY_NOT_ALLOWED: Final = "currency-not-allowed"
PRICE_CHANGED: Final = "price-changed"

ERROR_STRINGS: Final = (
    EXCEEDED_MAX_STEP,
    LOWERING_TOO_SOON,
    SERVER_ALREADY_RENTED,
    NOT_ENOUGH_BALANCE,
    TOO_LOW_PRICE,
    SERVER_OFFLINE,
    CURRENCY_NOT_ALLOWED,
    PRICE_CHANGED,
)

# --------------------------------------------------------------------------- endpoints

Method = Literal["GET", "POST"]
#: Which pacing window a call counts in: every call is a ``request``; ``create_order``
#: is also a ``create`` (the 5 s window).
Kind = Literal["request", "create"]


@dataclass(frozen=True)
class Endpoint:
    """One API v1 endpoint.

    ``auth``: it needs a key (the others answer without one). ``idempotent``: sending it
    twice does no more than once (reads), so it may be retried whatever happened.
    ``response``, ``request`` and ``params`` name Structs of ``clore._wire``: the answer,
    the JSON body (one of these forms; empty: no body) and the query parameters (each
    field of that Struct is one).
    """

    name: str
    method: Method
    auth: bool
    idempotent: bool
    response: str
    request: tuple[str, ...] = ()
    params: str | None = None
    kind: Kind = "request"
    summary: str = ""

    @property
    def mutates(self) -> bool:
        """True when a call may change something (an order, a bid, a server's settings):
        every endpoint that is not a read. ``Clore(explain=...)`` sends none of these."""
        return not self.idempotent

    @property
    def path(self) -> str:
        """The path under the host: ``/v1/<name>``."""
        return f"/v1/{self.name}"


ENDPOINTS: Final[Mapping[str, Endpoint]] = {
    ep.name: ep
    for ep in (
        Endpoint(
            "marketplace",
            "GET",
            False,
            True,
            "MarketplaceResponse",
            summary="Every listed server; my_servers lists the caller's own ids.",
        ),
        Endpoint(
            "spot_marketplace",
            "GET",
            False,
            True,
            "SpotMarketplaceResponse",
            params="SpotMarketplaceParams",
            summary="Spot offers on one server; exists is false for an unknown server.",
        ),
        Endpoint(
            "my_orders",
            "GET",
            True,
            True,
            "MyOrdersResponse",
            params="MyOrdersParams",
            summary="The caller's orders (mrl in seconds).",
        ),
        Endpoint(
            "create_order",
            "POST",
            True,
            False,
            "Envelope",
            request=("CreateOrderRequest",),
            kind="create",
            summary='Rent a server or place a spot bid; answers {"code": 0} only, no order id.',
        ),
        Endpoint(
            "cancel_order",
            "POST",
            True,
            False,
            "Envelope",
            request=("CancelOrderRequest",),
            summary="Cancel an order or spot offer.",
        ),
        Endpoint(
            "set_spot_price",
            "POST",
            True,
            False,
            "Envelope",
            request=("SetSpotPriceRequest",),
            summary="Change a spot bid; lowering is limited per step and to once per 600 s.",
        ),
        Endpoint(
            "wallets",
            "GET",
            True,
            True,
            "WalletsResponse",
            summary="The caller's wallets and balances.",
        ),
        Endpoint(
            "my_servers",
            "GET",
            True,
            True,
            "MyServersResponse",
            summary="The servers the caller hosts.",
        ),
        Endpoint(
            "server_config",
            "GET",
            True,
            True,
            "ServerConfigResponse",
            request=("ServerConfigRequest",),
            summary="One hosted server's configuration (a GET with a JSON body).",
        ),
        Endpoint(
            "set_server_settings",
            "POST",
            True,
            False,
            "Envelope",
            request=("SetServerSettingsRequest", "SetServerSettingsPerCurrencyRequest"),
            summary="Change a hosted server's settings (legacy or per-currency form).",
        ),
        # The reference lists these two as public; the sandbox (and so the SDK) wants a key.
        Endpoint(
            "renter_fees",
            "GET",
            True,
            True,
            "RenterFees",
            summary="Renter fees (percent) and creation fees per order type and currency.",
        ),
        Endpoint(
            "poh_balance",
            "GET",
            True,
            True,
            "PohBalance",
            summary="The caller's proof-of-holding balance.",
        ),
    )
}
