"""The one schema of the Clore.ai API v1: msgspec Structs used by the SDK *and* the sandbox.

Reading is tolerant: unknown fields are ignored, missing fields take defaults, numbers
may arrive as strings (decode with ``strict=False``), ``gpu_array`` may be nested lists
with stray spaces and ``gigaspot`` a bool or an object. Fields that the API sends only
on some records default to ``msgspec.UNSET`` so that encoding them (the sandbox does)
leaves them out, exactly as the real API does.

Units matter and differ between endpoints (see ``../shared/clore-api.md``):

* every price is **per day** in the named currency;
* ``Server.mrl`` and ``ServerConfig.mrl`` are **hours**;
* ``Order.mrl`` and ``SpotServer.mrl`` are **seconds**.

The derived helpers (``gpu_count``, ``price_per_hour``, ``max_rental``, ``ssh_endpoint``,
...) are the only place these conversions are written. The Structs live in
``market`` (marketplace, spot), ``account`` (orders, wallets, fees, host side) and
``requests`` (write bodies, query parameters, the envelope); import them from here. The
API's facts (endpoints, codes, limits, currencies) are ``clore._facts``'s.
"""

from __future__ import annotations

from typing import Any

import msgspec

from clore._wire.account import (
    MyOrdersResponse,
    MyServer,
    MyServersResponse,
    Order,
    PohBalance,
    RenterFees,
    ServerConfig,
    ServerConfigResponse,
    Wallet,
    WalletsResponse,
)
from clore._wire.common import (
    CURRENCIES,
    CURRENCY_ALIASES,
    ascii_int,
    normalize_currency,
    parse_gpu,
)
from clore._wire.market import (
    MarketplaceResponse,
    Net,
    Price,
    Rating,
    Server,
    Specs,
    SpotMarket,
    SpotMarketplaceResponse,
    SpotOffer,
    SpotServer,
    UsdPrice,
)
from clore._wire.requests import (
    PER_CURRENCY_PREFIX,
    CancelOrderRequest,
    CreateOrderRequest,
    Envelope,
    MyOrdersParams,
    ServerConfigRequest,
    SetServerSettingsPerCurrencyRequest,
    SetServerSettingsRequest,
    SetSpotPriceRequest,
    SpotMarketplaceParams,
)

__all__ = [
    "CURRENCIES",
    "CURRENCY_ALIASES",
    "PER_CURRENCY_PREFIX",
    "CancelOrderRequest",
    "CreateOrderRequest",
    "Envelope",
    "MarketplaceResponse",
    "MyOrdersParams",
    "MyOrdersResponse",
    "MyServer",
    "MyServersResponse",
    "Net",
    "Order",
    "PohBalance",
    "Price",
    "Rating",
    "RenterFees",
    "Server",
    "ServerConfig",
    "ServerConfigRequest",
    "ServerConfigResponse",
    "SetServerSettingsPerCurrencyRequest",
    "SetServerSettingsRequest",
    "SetSpotPriceRequest",
    "Specs",
    "SpotMarket",
    "SpotMarketplaceParams",
    "SpotMarketplaceResponse",
    "SpotOffer",
    "SpotServer",
    "UsdPrice",
    "Wallet",
    "WalletsResponse",
    "ascii_int",
    "decode",
    "normalize_currency",
    "parse_gpu",
]


def decode(data: bytes, type: type[Any]) -> Any:
    """Decode ``data`` as ``type`` tolerantly (numbers and bools may arrive as strings)."""
    return msgspec.json.decode(data, type=type, strict=False)
