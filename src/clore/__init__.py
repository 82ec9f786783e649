"""clore: SDK, CLI, sandbox and automation for the Clore.ai GPU marketplace.

Names are imported lazily so that ``clore --help`` starts without loading httpx,
msgspec or rich; ``from clore import Clore`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from clore._version import __version__

if TYPE_CHECKING:
    from clore._client import AsyncClore, Clore
    from clore._clock import Clock, ManualClock, SystemClock
    from clore._errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        ApplicationError,
        AuthenticationError,
        CloreError,
        ConfigError,
        CurrencyNotAllowedError,
        DatabaseError,
        ExceededMaxStepError,
        InvalidEndpointError,
        InvalidInputError,
        NotEnoughBalanceError,
        OrderError,
        OrderExpiredError,
        OrderNotFoundError,
        OrderUnconfirmedError,
        ParameterError,
        PriceChangedError,
        RateLimitError,
        ServerAlreadyRentedError,
        ServerNotFoundError,
        ServerOfflineError,
        SpotPriceLoweringTooSoonError,
        TooLowPriceError,
        TransportError,
        UnexpectedResponseError,
        WaitTimeoutError,
    )
    from clore._explain import Explained, ExplainedRequest
    from clore._facts import CurrencyName, OrderTypeName
    from clore._pacing import Pacing
    from clore._validate import preview_create_order
    from clore._wire import (
        CURRENCIES,
        CreateOrderRequest,
        MyServer,
        Order,
        PohBalance,
        RenterFees,
        Server,
        ServerConfig,
        SpotMarket,
        SpotOffer,
        Wallet,
    )
    from clore._wire.account import OrderState
    from clore.compat import CloreAPIError, CloreClient

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "ApplicationError",
    "AsyncClore",
    "AuthenticationError",
    "CURRENCIES",
    "Clock",
    "Clore",
    "CloreAPIError",
    "CloreClient",
    "CloreError",
    "ConfigError",
    "CreateOrderRequest",
    "CurrencyName",
    "CurrencyNotAllowedError",
    "DatabaseError",
    "ExceededMaxStepError",
    "Explained",
    "ExplainedRequest",
    "InvalidEndpointError",
    "InvalidInputError",
    "ManualClock",
    "MyServer",
    "NotEnoughBalanceError",
    "Order",
    "OrderError",
    "OrderExpiredError",
    "OrderNotFoundError",
    "OrderState",
    "OrderTypeName",
    "OrderUnconfirmedError",
    "Pacing",
    "ParameterError",
    "PohBalance",
    "PriceChangedError",
    "RateLimitError",
    "RenterFees",
    "Server",
    "ServerAlreadyRentedError",
    "ServerConfig",
    "ServerNotFoundError",
    "ServerOfflineError",
    "SpotMarket",
    "SpotOffer",
    "SpotPriceLoweringTooSoonError",
    "SystemClock",
    "TooLowPriceError",
    "TransportError",
    "UnexpectedResponseError",
    "WaitTimeoutError",
    "Wallet",
    "__version__",
    "preview_create_order",
]

# Where each lazily imported name lives.
_EXPORTS: dict[str, str] = {
    "APIConnectionError": "clore._errors",
    "APIError": "clore._errors",
    "APITimeoutError": "clore._errors",
    "ApplicationError": "clore._errors",
    "AsyncClore": "clore._client",
    "AuthenticationError": "clore._errors",
    "CURRENCIES": "clore._wire",
    "CreateOrderRequest": "clore._wire",
    "Clock": "clore._clock",
    "Clore": "clore._client",
    "CloreAPIError": "clore.compat",
    "CloreClient": "clore.compat",
    "CloreError": "clore._errors",
    "ConfigError": "clore._errors",
    "CurrencyName": "clore._facts",
    "CurrencyNotAllowedError": "clore._errors",
    "DatabaseError": "clore._errors",
    "ExceededMaxStepError": "clore._errors",
    "Explained": "clore._explain",
    "ExplainedRequest": "clore._explain",
    "InvalidEndpointError": "clore._errors",
    "InvalidInputError": "clore._errors",
    "ManualClock": "clore._clock",
    "MyServer": "clore._wire",
    "NotEnoughBalanceError": "clore._errors",
    "Order": "clore._wire",
    "OrderError": "clore._errors",
    "OrderExpiredError": "clore._errors",
    "OrderNotFoundError": "clore._errors",
    "OrderState": "clore._wire.account",
    "OrderTypeName": "clore._facts",
    "OrderUnconfirmedError": "clore._errors",
    "Pacing": "clore._pacing",
    "ParameterError": "clore._errors",
    "PohBalance": "clore._wire",
    "PriceChangedError": "clore._errors",
    "RateLimitError": "clore._errors",
    "RenterFees": "clore._wire",
    "Server": "clore._wire",
    "ServerAlreadyRentedError": "clore._errors",
    "ServerConfig": "clore._wire",
    "ServerNotFoundError": "clore._errors",
    "ServerOfflineError": "clore._errors",
    "SpotMarket": "clore._wire",
    "SpotOffer": "clore._wire",
    "SpotPriceLoweringTooSoonError": "clore._errors",
    "SystemClock": "clore._clock",
    "TooLowPriceError": "clore._errors",
    "TransportError": "clore._errors",
    "UnexpectedResponseError": "clore._errors",
    "WaitTimeoutError": "clore._errors",
    "Wallet": "clore._wire",
    "preview_create_order": "clore._validate",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
